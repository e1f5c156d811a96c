/**
 * The runc executor (root mode): one RUN step is
 *
 *   snapshot of the chain (lib/rootfs, cached, read-only lower dir)
 *   + stub lower dir with the mount targets the image lacks (stubs.ts)
 *   + per-step upper/work dirs -> overlay mount (overlay.ts)
 *   + generated /etc/hosts, resolv.conf, hostname (etc-files.ts)
 *   + config.json (spec.ts, USER resolved by user.ts)
 *   -> `runc run` (runc-cli.ts), output to onOutput
 *   -> upper dir captured as layer entries (lib/rootfs/capture.ts)
 *   -> writeLayer into the chain's store.
 *
 * Everything a step makes lives in one temp dir below the cache dir,
 * registered with lib/temp-files.ts; on every way out (success, failure,
 * abort) the container is deleted, the overlay unmounted and the dir
 * removed. runc's state dir is `<cacheDir>/runc/state`. What a killed
 * process left behind is removed by the next step's sweep (sweep.ts).
 *
 * Rootless (user namespace with newuidmap/newgidmap) is not done yet: a
 * non-root caller gets RUNC_NEEDS_ROOT.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { abortError, throwIfAborted } from '../../abort.js';
import { OcistackError } from '../../errors.js';
import { writeLayer } from '../../layer/write.js';
import { captureOverlayUpper, ensureSnapshot } from '../../rootfs/index.js';
import { removeTemp, tempName, trackTemp } from '../../temp-files.js';
import type { Executor, RunRequest, RunResult } from '../types.js';
import { writeEtcFiles } from './etc-files.js';
import { mountOverlay, unmountOverlay } from './overlay.js';
import { deleteContainer, runContainer, type RuncContainer } from './runc-cli.js';
import { MOUNT_TARGET_DIRS, MOUNT_TARGET_FILES, runtimeSpec } from './spec.js';
import { makeStubLayer } from './stubs.js';
import { sweepStaleSteps } from './sweep.js';
import { readAccountFiles, resolveRunUser } from './user.js';

export interface RuncExecutorOptions {
  /** The runc binary (default: runc on PATH). */
  runc?: string;
}

/** Hostname inside a step (BuildKit uses `buildkitsandbox`). */
export const STEP_HOSTNAME = 'ocistack';

/** Paths a step's change never contains: kernel file systems and the bind-mounted /etc files. */
export const CAPTURE_EXCLUDE = [...MOUNT_TARGET_DIRS, ...MOUNT_TARGET_FILES];

/** The runc binary on `env.PATH`, or undefined. */
export function findRunc(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, 'runc');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export function createRuncExecutor(opts: RuncExecutorOptions = {}): Executor {
  return {
    name: 'runc',
    run: (req) => runStep(opts.runc ?? findRunc() ?? 'runc', req),
  };
}

/** runc's state dir for this cache dir (`runc --root`). */
export function runcStateDir(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'runc', 'state');
}

/** Where step temp dirs live (`<cacheDir>/runc/steps/step-PID-...`). */
export function runcStepsDir(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'runc', 'steps');
}

function checkRunc(runc: string, req: RunRequest): void {
  try {
    fs.accessSync(runc, fs.constants.X_OK);
    return;
  } catch {
    /* below: a bare name is looked up on PATH */
  }
  if (!runc.includes('/') && findRunc()) return;
  throw new OcistackError(`RUN needs runc, and ${runc.includes('/') ? runc + ' is not an executable' : 'it is not on PATH'}`, {
    code: 'RUNC_MISSING',
    location: req.location,
    hint: 'install runc (Debian/Ubuntu: apt-get install runc; Fedora: dnf install runc); COPY-only builds work without it',
  });
}

function checkRequest(req: RunRequest): void {
  if (process.getuid?.() !== 0) {
    throw new OcistackError('the runc executor runs RUN steps as root only (rootless mode is not implemented yet)', {
      code: 'RUNC_NEEDS_ROOT',
      location: req.location,
      hint: 'run ocistack as root (e.g. sudo), or build a Dockerfile without RUN',
    });
  }
  if (req.mounts.length) {
    throw new OcistackError(`RUN --mount=type=${req.mounts[0]!.type} is not supported by the runc executor yet`, {
      code: 'RUN_MOUNT_UNSUPPORTED',
      location: req.location,
      hint: 'remove the --mount option for now',
    });
  }
}

/** This process's capability bounding set (/proc/self/status CapBnd); undefined when unreadable. */
export function boundingCapabilities(): bigint | undefined {
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : undefined;
  } catch {
    return undefined;
  }
}

function copyRootMeta(from: string, to: string): void {
  const st = fs.statSync(from);
  fs.chmodSync(to, st.mode & 0o7777);
  fs.chownSync(to, st.uid, st.gid);
}

async function runStep(runc: string, req: RunRequest): Promise<RunResult> {
  throwIfAborted(req.signal);
  checkRunc(runc, req);
  checkRequest(req);
  const { chain } = req;
  // Steps of ocistack processes that died (kill -9): their container, mount and dir.
  await sweepStaleSteps({ runc, stateDir: runcStateDir(req.cacheDir), stepsDir: runcStepsDir(req.cacheDir) });
  const snap = await ensureSnapshot({ store: chain.store, layers: chain.layers, diffIds: chain.diffIds, cacheDir: req.cacheDir, signal: req.signal, onProgress: req.onProgress });
  const user = resolveRunUser(req.process.user, readAccountFiles(snap.rootfs), req.location);

  const stepDir = path.join(runcStepsDir(req.cacheDir), tempName('step'));
  const dirs = { stubs: 'stubs', upper: 'upper', work: 'work', merged: 'merged', etc: 'etc', bundle: 'bundle' };
  const p = Object.fromEntries(Object.entries(dirs).map(([k, v]) => [k, path.join(stepDir, v)])) as typeof dirs;
  fs.mkdirSync(runcStepsDir(req.cacheDir), { recursive: true });
  fs.mkdirSync(stepDir, { mode: 0o700 });
  trackTemp(stepDir);
  let mounted = false;
  let container: RuncContainer | undefined;
  try {
    for (const d of [p.stubs, p.upper, p.work, p.merged, p.bundle]) fs.mkdirSync(d);
    // The merged root shows the upper dir's own metadata: give it the image's.
    copyRootMeta(snap.rootfs, p.upper);
    makeStubLayer(snap.rootfs, p.stubs, { dirs: MOUNT_TARGET_DIRS, files: MOUNT_TARGET_FILES });
    await mountOverlay({ lower: [p.stubs, snap.rootfs], upper: p.upper, work: p.work, merged: p.merged });
    mounted = true;
    const etc = writeEtcFiles(p.etc, STEP_HOSTNAME, req.network);
    const spec = runtimeSpec({ ...req.process, user, network: req.network, security: req.security, rootfs: p.merged, hostname: STEP_HOSTNAME, etc, boundingCaps: boundingCapabilities() });
    fs.writeFileSync(path.join(p.bundle, 'config.json'), JSON.stringify(spec));
    const state = runcStateDir(req.cacheDir);
    fs.mkdirSync(state, { recursive: true, mode: 0o700 });
    container = { runc, root: state, bundle: p.bundle, id: path.basename(stepDir) };
    const exitCode = await runContainer(container, { onOutput: req.onOutput, signal: req.signal });
    await deleteContainer(container);
    container = undefined;
    await unmountOverlay(p.merged);
    mounted = false;
    if (exitCode !== 0) return { exitCode };
    if (req.signal?.aborted) throw abortError(req.signal);
    const { entries, notes } = await captureOverlayUpper({ upper: p.upper, exclude: CAPTURE_EXCLUDE, signal: req.signal });
    for (const message of notes) req.onProgress?.({ type: 'warning', message, location: req.location });
    if (entries.length === 0) return { exitCode };
    const layer = await writeLayer(entries, { store: chain.store, sourceDateEpoch: req.sourceDateEpoch, signal: req.signal, location: req.location });
    return { exitCode, layer };
  } finally {
    if (container) await deleteContainer(container);
    if (mounted) await unmountOverlay(p.merged);
    await removeTemp(stepDir).catch(() => undefined);
  }
}
