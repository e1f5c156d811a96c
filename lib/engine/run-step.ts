/**
 * The engine side of RUN: turns a dispatched RUN into the executor's
 * RunRequest (the process, the stage's layer chain, mounts, network,
 * security), calls the executor, streams its output as progress events and
 * turns a non-zero exit into RUN_FAILED with the last lines of output.
 *
 * The argv is built by the Dockerfile dispatcher (lib/dockerfile/dispatch.ts)
 * the way BuildKit's dispatchRun does: shell form is the stage's SHELL plus
 * the script, exec form as written, `RUN <<EOF` runs the heredoc body
 * through the shell (with `#!`, the body becomes a file at
 * /dev/pipes/NAME, handed over as `inlineFiles`), any other heredoc RUN
 * hands the command with the bodies appended to the shell.
 */
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import type { SourceLocation } from '../errors.js';
import type { ResolvedInstruction, RunMountSpec } from '../dockerfile/types.js';
import type { Executor, LayerChain, RunMount, RunRequest } from '../executor/types.js';
import type { LayerResult } from '../layer/types.js';
import type { ProgressListener } from '../progress/events.js';
import { RunOutput } from './run-output.js';
import { readBuildSecret, type BuildSecret } from './secrets.js';
import { contextMountSource, mountSourcePath, stageMountSource, type MountSources } from './run-mount-source.js';

export type ResolvedRun = Extract<ResolvedInstruction, { kind: 'run' }>;

export interface RunStepOptions {
  run: ResolvedRun;
  location: SourceLocation;
  stepId: string;
  chain: LayerChain;
  /** The stage's WORKDIR (already created in the chain) and USER. */
  cwd: string;
  user: string;
  executor: Executor;
  /** `--allow security.insecure`: permit `RUN --security=insecure`. */
  allowInsecure: boolean;
  cacheDir: string;
  sourceDateEpoch?: number;
  signal?: AbortSignal;
  progress: ProgressListener;
  /** The build's secrets (BuildOptions.secrets); only those the step mounts are read. */
  secrets?: Record<string, BuildSecret>;
  /** For `{ env }` secrets (BuildOptions.env). */
  env?: NodeJS.ProcessEnv;
  /** Where `type=bind` mounts and `type=cache,from=` find their files: the build's context and stages. */
  mountSources?: MountSources;
  /** SSH agent sockets by id (BuildOptions.ssh), for `type=ssh` mounts. */
  ssh?: Record<string, string>;
}

/** How many lines of output a RUN_FAILED error shows. */
const ERROR_LINES = 10;
/** How much of the command a RUN_FAILED error shows. */
const COMMAND_CHARS = 80;

/**
 * Run one RUN step; resolves to its change layer (undefined: nothing changed).
 * @throws OcistackError `RUN_FAILED` (non-zero exit), `RUN_INSECURE`
 *   (`--security=insecure` not allowed), or what the executor throws.
 */
export async function runStep(o: RunStepOptions): Promise<LayerResult | undefined> {
  const req = await runRequest(o);
  const output = new RunOutput(o.stepId, o.progress, ERROR_LINES);
  req.onOutput = output.onOutput;
  let result;
  try {
    result = await o.executor.run(req);
  } finally {
    output.flush();
  }
  if (result.exitCode !== 0) throw runFailed(o, result.exitCode, output.lastLines());
  return result.layer;
}

/** The RunRequest for a RUN (without onOutput). Exported for tests and other engines. */
export async function runRequest(o: RunStepOptions): Promise<RunRequest> {
  const security = o.run.security === 'insecure' ? 'insecure' : 'sandbox';
  if (security === 'insecure' && !o.allowInsecure) {
    throw new OcistackError('RUN --security=insecure is not allowed in this build', {
      code: 'RUN_INSECURE',
      location: o.location,
      hint: 'allow it with "ocistack build --allow security.insecure" (build({ allowInsecure: true })), or drop --security=insecure',
    });
  }
  const req: RunRequest = {
    chain: o.chain,
    process: { args: [...o.run.args], env: [...o.run.env], cwd: o.cwd || '/', user: o.user },
    mounts: [],
    network: (o.run.network ?? 'default') as RunRequest['network'],
    security,
    location: o.location,
    stepId: o.stepId,
    cacheDir: o.cacheDir,
    onProgress: o.progress,
  };
  const secrets: Record<string, Buffer> = {};
  const ssh: Record<string, string> = {};
  let sshMounts = 0;
  for (const spec of o.run.parsedMounts ?? []) {
    const m = toRunMount(spec);
    if (m.type === 'secret') {
      const value = secretValue(o, m.id!);
      if (value === undefined) {
        if (m.required) {
          throw new OcistackError(`RUN --mount=type=secret: the secret "${m.id}" is required but was not given`, {
            code: 'RUN_SECRET_MISSING',
            location: o.location,
            hint: `pass it with "ocistack build --secret id=${m.id},src=FILE" (or env=VAR), build({ secrets: { '${m.id}': { file } } })`,
          });
        }
        continue; // as BuildKit: a missing optional secret is simply not mounted
      }
      secrets[m.id!] = value;
    } else if (m.type === 'ssh') {
      if (spec.source !== undefined) throw new OcistackError('RUN --mount=type=ssh does not take source=', { code: 'RUN_MOUNT', location: o.location, hint: 'the agent comes from "ocistack build --ssh ID=SOCKET"; remove source=' });
      // As BuildKit's LLB: ssh_agent.N counts this RUN's ssh mounts; the first one is SSH_AUTH_SOCK unless the env has one.
      if (!m.target) m.target = `/run/buildkit/ssh_agent.${sshMounts}`;
      if (sshMounts++ === 0 && !req.process.env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) req.process.env.push(`SSH_AUTH_SOCK=${m.target}`);
      const socket = o.ssh?.[m.id!];
      if (socket === undefined) {
        if (m.required) {
          throw new OcistackError(`RUN --mount=type=ssh: the SSH agent "${m.id}" is required but was not given`, {
            code: 'RUN_SSH_MISSING',
            location: o.location,
            hint: `pass it with "ocistack build --ssh ${m.id === 'default' ? 'default' : `${m.id}=SOCKET`}" (default: $SSH_AUTH_SOCK), build({ ssh: { '${m.id}': SOCKET } })`,
          });
        }
        continue; // as BuildKit: an optional agent that was not given is not mounted
      }
      ssh[m.id!] = socket;
    } else if (m.type === 'bind') {
      const src = spec.source ?? '/';
      if (!o.mountSources) throw new OcistackError('RUN --mount=type=bind needs the build context, which this caller did not give', { code: 'RUN_MOUNT_SOURCE', location: o.location, hint: 'pass mountSources to runStep' });
      m.source = spec.from
        ? stageMountSource(await o.mountSources.stage(spec.from), spec.from, src, o.location)
        : await contextMountSource(o.mountSources.context, src, o.location);
    } else if (m.type === 'cache') {
      if (spec.from) {
        if (!o.mountSources) throw new OcistackError('RUN --mount=type=cache,from= needs the build\'s stages, which this caller did not give', { code: 'RUN_MOUNT_SOURCE', location: o.location, hint: 'pass mountSources to runStep' });
        m.source = stageMountSource(await o.mountSources.stage(spec.from), spec.from, spec.source ?? '/', o.location);
      } else if (spec.source !== undefined) {
        const sub = mountSourcePath(spec.source, 'the cache mount', o.location);
        if (sub) m.subpath = sub;
      }
    }
    req.mounts.push(m);
  }
  if (Object.keys(secrets).length) req.secrets = secrets;
  if (Object.keys(ssh).length) req.ssh = ssh;
  if (o.run.inlineFiles?.length) req.inlineFiles = o.run.inlineFiles.map((f) => ({ ...f }));
  if (o.sourceDateEpoch !== undefined) req.sourceDateEpoch = o.sourceDateEpoch;
  if (o.signal) req.signal = o.signal;
  return req;
}

function secretValue(o: RunStepOptions, id: string): Buffer | undefined {
  const s = o.secrets?.[id];
  return s ? readBuildSecret(id, s, o.env ?? process.env, o.location) : undefined;
}

/** A parsed `--mount` as the executor contract names its fields (ids and targets defaulted as BuildKit does; sources added by runRequest). */
function toRunMount(m: RunMountSpec): RunMount {
  const out: RunMount = { type: m.type, target: m.target ?? '', readonly: m.readOnly };
  if (m.type === 'secret') {
    out.id = m.id || m.source || path.posix.basename(m.target ?? '');
    // With env= the secret is a variable only, unless a target is given too.
    if (!out.target && m.env === undefined) out.target = `/run/secrets/${out.id}`;
    out.readonly = true;
  } else if (m.type === 'ssh') {
    out.id = m.id || 'default';
    out.mode = 0o600;
  } else if (m.id !== undefined) out.id = m.id;
  if (m.sharing !== undefined) out.sharing = m.sharing;
  if (m.mode !== undefined) out.mode = m.mode;
  if (m.uid !== undefined) out.uid = m.uid;
  if (m.gid !== undefined) out.gid = m.gid;
  if (m.required !== undefined) out.required = m.required;
  if (m.env !== undefined) out.env = m.env;
  if (m.sizeLimit !== undefined) out.size = m.sizeLimit;
  return out;
}

function runFailed(o: RunStepOptions, exitCode: number, last: string[]): OcistackError {
  const cmd = o.run.args.join(' ').replace(/\s*\n\s*/g, ' ');
  const shown = cmd.length > COMMAND_CHARS ? `${cmd.slice(0, COMMAND_CHARS - 1)}…` : cmd;
  const tail = last.length ? `\nlast ${last.length === 1 ? 'line' : `${last.length} lines`} of output:\n${last.map((l) => `  ${l}`).join('\n')}` : '\n(no output)';
  return new OcistackError(`RUN ${shown} failed with exit code ${exitCode}${tail}`, {
    code: 'RUN_FAILED',
    location: o.location,
    hint: 'fix the command (its output is above); nothing was tagged, written or pushed',
  });
}
