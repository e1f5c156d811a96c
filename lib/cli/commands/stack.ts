/**
 * `ocistack stack list|build|push [DIR] [IMAGE...]`: the images of an
 * IDPBuilder stack directory, built (and pushed to its Gitea) in one go.
 * Thin: flags -> a GiteaAccessRequest and batch options, lib/stack does the
 * work, stack-report.ts formats. The table goes to stdout, progress and the
 * credential/trust sources to stderr.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { UsageError } from '../../errors.js';
import { parseEpoch } from '../../engine/time.js';
import { parseSecretFlag } from '../../engine/secrets.js';
import { selectExecutor } from '../../executor/select.js';
import type { RegistryOptions } from '../../registry/types.js';
import { buildStack, listStack, pushStack, type StackBuildOptions } from '../../stack/batch.js';
import { digestPins, splitPins } from '../../stack/pin-list.js';
import {
  defaultDiscoverStack, defaultResolveGiteaAccess, defaultWritePins,
  type DiscoverStack, type GiteaAccessRequest, type ResolveGiteaAccess, type WritePins,
} from '../../stack/providers.js';
import type { GiteaAccess } from '../../stack/types.js';
import { flagBool, flagList, flagString, parseArgs, parseKeyValues, type FlagSpec, type ParsedArgs } from '../args.js';
import { progressFlagSpecs, progressFlagsHelp, progressFromFlags } from '../progress-flag.js';
import { parseCreds, parseDuration, parseSize, registryFlagSpecs, registryFlagsHelp } from '../registry-flags.js';
import { formatAccessSources, formatFailures, formatListing, formatPins, formatSummary, formatUnpinnable } from '../stack-report.js';
import type { CliCommand, CliIO } from '../types.js';

const ENTITLEMENTS = ['security.insecure'];
const SUBCOMMANDS = ['list', 'build', 'push'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const targetSpecs: FlagSpec[] = [
  { name: 'host', type: 'string' },
  { name: 'port', type: 'string' },
  { name: 'use-path-routing', type: 'boolean' },
  { name: 'tag', type: 'string' },
];

const buildSpecs: FlagSpec[] = [
  ...targetSpecs,
  { name: 'build-arg', type: 'list' },
  { name: 'platform', type: 'string' },
  ...progressFlagSpecs,
  { name: 'source-date-epoch', type: 'string' },
  { name: 'cache-dir', type: 'string' },
  { name: 'executor', type: 'string' },
  { name: 'allow', type: 'list' },
  { name: 'secret', type: 'list' },
  { name: 'fail-fast', type: 'boolean' },
  { name: 'concurrency', type: 'string' },
  ...registryFlagSpecs,
];

const pushSpecs: FlagSpec[] = [...buildSpecs, { name: 'pin', type: 'boolean' }, { name: 'write', type: 'boolean' }];

/** `stack list` reads the target flags, and takes the trust flags so a pasted build command line still parses. */
const listSpecs: FlagSpec[] = [...targetSpecs, ...registryFlagSpecs];

const help = `Usage: ocistack stack list [OPTIONS] [DIR]
       ocistack stack build [OPTIONS] [DIR] [IMAGE...]
       ocistack stack push [OPTIONS] [DIR] [IMAGE...]

The images of an IDPBuilder stack (the DIR given to "idpbuilder create -p DIR",
default "."): the Dockerfiles next to the manifests its ArgoCD apps deploy, or
the images its ocistack.yaml lists. Each is named
gitea.<host>:<port>/giteaadmin/<name>:<tag>, the name the manifests use.

  list    show each image: its Dockerfile, where it is pushed, the manifests using it
  build   build every image (or the IMAGEs named), kept in the build cache under its name
  push    build every image (or the IMAGEs named) and push it to the cluster's Gitea

Credentials and TLS trust for Gitea are found with no flags (the cluster's
secrets via idpbuilder or kubectl, OCISTACK_USERNAME/OCISTACK_PASSWORD, the auth
files of "ocistack login"); the source used is printed, never the secret.
After a build or push a table (image, status, digest, size, time, cached steps)
is printed on stdout. See docs/stacks.md.

Target:
      --host HOST            idpbuilder's --host (default: the cluster's, else cnoe.localtest.me)
      --port PORT            idpbuilder's --port (default: the cluster's, else 8443)
      --use-path-routing     idpbuilder's --use-path-routing: the registry is HOST:PORT
      --tag TAG              push every image as TAG (default: the tag the manifests use, else latest)

Build and push:
      --concurrency N        images built at once (default 2)
      --fail-fast            stop at the first failing image (default: build the others anyway)
      --build-arg K=V        a build argument for every image (repeatable; wins over ocistack.yaml's)
      --platform OS/ARCH     target platform of images that name none (default: this machine)
${progressFlagsHelp}
                             (each line starts with [IMAGE])
      --source-date-epoch N  clamp all timestamps to N (also read from $SOURCE_DATE_EPOCH)
      --cache-dir DIR        the one blob cache of every image (default $OCISTACK_CACHE_DIR or ~/.cache/ocistack)
      --executor NAME        what runs RUN steps: runc or none (default: runc when it is on PATH)
      --allow ENTITLEMENT    allow security.insecure (RUN --security=insecure); repeatable
      --secret id=ID,src=FILE|env=VAR
                             a secret for RUN --mount=type=secret,id=ID (repeatable)

Push only:
      --pin                  after the push, print each manifest reference pinned to the pushed digest
      --pin --write          and rewrite exactly those references in the stack's files
                             (only when every image was pushed: otherwise nothing)

Registry (for the Gitea registry only):
${registryFlagsHelp}
  -h, --help                 show this help

Exit status: 0 every image built (and pushed), 1 any image failed, 2 usage error,
130/143 interrupted by SIGINT/SIGTERM.
`;

/** The functions the command calls; tests and embedders pass their own. */
export interface StackCommandDeps {
  resolveAccess: ResolveGiteaAccess;
  discover: DiscoverStack;
  writePins: WritePins;
}

function parsePort(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw new UsageError(`--port "${s}" is not a TCP port`, 'write e.g. --port 8443');
  return n;
}

function parseConcurrency(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1) throw new UsageError(`--concurrency "${s}" is not a whole number of at least 1`, 'write e.g. --concurrency 2');
  return n;
}

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function parseTag(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (!TAG_RE.test(s)) {
    throw new UsageError(
      `--tag "${s}" is not a tag`,
      s.includes('/') || s.includes(':') ? 'give the tag alone (e.g. --tag v2): the registry and name come from the stack' : 'tags are up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"',
    );
  }
  return s;
}

async function stackDir(io: CliIO, arg: string | undefined): Promise<string> {
  const dir = path.resolve(io.cwd, arg ?? '.');
  const st = await fsp.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new UsageError(`stack directory ${arg ?? '.'} is not a directory`, 'the first argument is the stack directory (the one given to "idpbuilder create -p"); image names come after it, e.g. "ocistack stack push . hello"');
  }
  return dir;
}

/** The request to the access resolver: --host/--port/--use-path-routing, --creds, --ca-file/--cert-dir/--insecure. */
async function accessRequest(p: ParsedArgs, io: CliIO, purpose: GiteaAccessRequest['purpose']): Promise<GiteaAccessRequest> {
  const req: GiteaAccessRequest = { purpose, env: io.env, signal: io.signal };
  const host = flagString(p, 'host');
  if (host !== undefined) {
    if (!/^[A-Za-z0-9.-]+$/.test(host)) throw new UsageError(`--host "${host}" is not a host name`, 'write e.g. --host cnoe.localtest.me (no scheme, no port: use --port)');
    req.host = host;
  }
  const port = parsePort(flagString(p, 'port'));
  if (port !== undefined) req.port = port;
  if (p.flags.has('use-path-routing')) req.pathRouting = flagBool(p, 'use-path-routing');
  const creds = flagString(p, 'creds');
  // `list` pushes nothing: no password is read for it.
  if (creds !== undefined && purpose !== 'list') req.credentials = await parseCreds(creds, io);
  const caFile = flagString(p, 'ca-file');
  if (caFile) req.caFile = path.resolve(io.cwd, caFile);
  const certDir = flagString(p, 'cert-dir');
  if (certDir) req.certDir = path.resolve(io.cwd, certDir);
  if (flagBool(p, 'insecure') || p.flags.get('tls-verify') === false) req.insecure = true;
  return req;
}

/** The registry flags that are not about trust or credentials, for the Gitea host the access names. */
function transferOptions(p: ParsedArgs, access: GiteaAccess): RegistryOptions {
  const host = access.target.registry;
  const opts: RegistryOptions = {};
  const timeout = flagString(p, 'timeout');
  if (timeout !== undefined) {
    const ms = parseDuration(timeout, 'timeout');
    opts.timeouts = { connectMs: ms, tlsMs: ms, idleMs: ms };
  }
  const chunk = flagString(p, 'chunk-size');
  if (chunk) opts.chunkSize = parseSize(chunk, 'chunk-size');
  if (flagBool(p, 'plain-http')) opts.plainHttpRegistries = [host];
  if (p.flags.get('tls-verify') === false) opts.httpFallbackRegistries = [host];
  return opts;
}

function withTransfer(access: GiteaAccess, extra: RegistryOptions): GiteaAccess {
  const r = access.registry;
  return {
    ...access,
    registry: {
      ...extra,
      ...r,
      ...(extra.plainHttpRegistries ? { plainHttpRegistries: [...(r.plainHttpRegistries ?? []), ...extra.plainHttpRegistries] } : {}),
      ...(extra.httpFallbackRegistries ? { httpFallbackRegistries: [...(r.httpFallbackRegistries ?? []), ...extra.httpFallbackRegistries] } : {}),
    },
  };
}

async function runList(p: ParsedArgs, io: CliIO, deps: StackCommandDeps): Promise<number> {
  if (p.positionals.length > 1) {
    throw new UsageError(`stack list takes one stack directory, got ${p.positionals.length}: ${p.positionals.join(' ')}`, 'write "ocistack stack list [DIR]"');
  }
  const dir = await stackDir(io, p.positionals[0]);
  const tag = parseTag(flagString(p, 'tag'));
  const listing = await listStack({
    dir,
    tag,
    access: await deps.resolveAccess(await accessRequest(p, io, 'list')),
    discover: deps.discover,
    env: io.env,
    signal: io.signal,
  });
  io.stdout.write(formatListing(listing));
  return 0;
}

async function runBatch(sub: 'build' | 'push', p: ParsedArgs, io: CliIO, deps: StackCommandDeps): Promise<number> {
  const dir = await stackDir(io, p.positionals[0]);
  const images = p.positionals.slice(1);
  const pin = flagBool(p, 'pin');
  const write = flagBool(p, 'write');
  if (write && !pin) throw new UsageError('--write needs --pin', 'write "--pin --write" to rewrite the references in the stack\'s files');
  const tag = parseTag(flagString(p, 'tag'));
  const concurrency = parseConcurrency(flagString(p, 'concurrency'));
  const epoch = flagString(p, 'source-date-epoch');
  const allow = flagList(p, 'allow');
  for (const a of allow) {
    if (!ENTITLEMENTS.includes(a)) throw new UsageError(`--allow "${a}" is not an entitlement ocistack knows`, `--allow takes ${ENTITLEMENTS.join(', ')}`);
  }
  const onProgress = progressFromFlags(p, io);
  const secrets = Object.fromEntries(flagList(p, 'secret').map((spec) => parseSecretFlag(spec, io.cwd, io.env)));
  const executor = await selectExecutor(flagString(p, 'executor'), io.env);
  const buildArgs = parseKeyValues(flagList(p, 'build-arg'), 'build-arg', io.env);
  const sourceDateEpoch = epoch !== undefined ? parseEpoch(epoch, '--source-date-epoch') : undefined;

  const resolved = await deps.resolveAccess(await accessRequest(p, io, sub));
  const access = withTransfer(resolved, transferOptions(p, resolved));
  // Where the target, credentials and trust came from, before any work (the secret never).
  io.stderr.write(formatAccessSources(access));

  const opts: StackBuildOptions = {
    dir,
    images,
    access,
    discover: deps.discover,
    tag,
    concurrency,
    failFast: flagBool(p, 'fail-fast'),
    cacheDir: flagString(p, 'cache-dir'),
    buildArgs,
    platform: flagString(p, 'platform'),
    sourceDateEpoch,
    executor,
    allowInsecure: allow.includes('security.insecure'),
    secrets,
    onProgress,
    env: io.env,
    signal: io.signal,
  };
  const result = sub === 'push' ? await pushStack(opts) : await buildStack(opts);
  io.stdout.write(formatSummary(result));
  io.stderr.write(formatFailures(result));
  if (pin) {
    const { writable, unpinnable } = splitPins(digestPins(result));
    const root = result.model.root;
    io.stdout.write(writable.length || unpinnable.length ? formatPins(writable, root) + formatUnpinnable(unpinnable, root) : 'no manifest reference to pin\n');
    const failed = result.images.filter((i) => i.status !== 'pushed').length;
    if (write && failed > 0) {
      // All or nothing: the stack's files never name some new digests and some old ones.
      io.stderr.write(`--pin --write: nothing rewritten, ${failed} of ${result.images.length} ${result.images.length === 1 ? 'image was' : 'images were'} not pushed; fix ${failed === 1 ? 'it' : 'them'} and run the push again\n`);
    } else if (write && writable.length) {
      await deps.writePins(writable);
      io.stderr.write(`rewrote ${writable.length} ${writable.length === 1 ? 'reference' : 'references'} in the stack's files${unpinnable.length ? `; ${unpinnable.length} left as ${unpinnable.length === 1 ? 'it was' : 'they were'} (listed above)` : ''}\n`);
    }
  }
  return result.ok ? 0 : 1;
}

/** The command with its dependencies (the real stack modules unless given). */
export function stackCommand(deps: Partial<StackCommandDeps> = {}): CliCommand {
  const full: StackCommandDeps = {
    resolveAccess: deps.resolveAccess ?? defaultResolveGiteaAccess,
    discover: deps.discover ?? defaultDiscoverStack,
    writePins: deps.writePins ?? defaultWritePins,
  };
  return {
    name: 'stack',
    summary: "List, build or push every image of an IDPBuilder stack to the cluster's Gitea",
    help,
    async run(argv: string[], io: CliIO): Promise<number> {
      const [sub, ...rest] = argv;
      if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub)) {
        throw new UsageError(sub ? `unknown stack command "${sub}"` : 'stack needs a command', `write "ocistack stack list|build|push [DIR]"; see "ocistack stack --help"`);
      }
      const s = sub as Sub;
      if (s === 'list') return runList(parseArgs(rest, listSpecs, 'stack list'), io, full);
      const p = parseArgs(rest, s === 'push' ? pushSpecs : buildSpecs, `stack ${s}`);
      return runBatch(s, p, io, full);
    },
  };
}

export const command: CliCommand = stackCommand();
