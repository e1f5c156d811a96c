/**
 * One RUN step, run in this process's namespaces: as real root (root mode),
 * or as root of the user namespace the rootless worker runs in (worker.ts).
 * See index.ts for the whole sequence.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { abortError, throwIfAborted } from '../../abort.js';
import { OcistackError } from '../../errors.js';
import { writeLayer } from '../../layer/write.js';
import { captureOverlayUpper, ensureRootfsLowers } from '../../rootfs/index.js';
import { removeTemp, tempName, trackTemp } from '../../temp-files.js';
import type { RunRequest, RunResult } from '../types.js';
import { writeEtcFiles } from './etc-files.js';
import { mountOverlay, overlayLowerBudget, unmountOverlay } from './overlay.js';
import { deleteContainer, runContainer, type RuncContainer } from './runc-cli.js';
import { occupyCpu } from '../../cpu-budget.js';
import { MOUNT_TARGET_DIRS, MOUNT_TARGET_FILES, runtimeSpec } from './spec.js';
import { makeStubLayer } from './stubs.js';
import { checkMountTypes, releaseStepMounts, stepMounts, type StepMounts } from './step-mounts.js';
import { sweepStaleSteps } from './sweep.js';
import { readAccountFiles, resolveRunUser } from './user.js';

/** Hostname inside a step (BuildKit uses `buildkitsandbox`). */
export const STEP_HOSTNAME = 'ocistack';

/** Paths a step's change never contains: kernel file systems and the bind-mounted /etc files. */
export const CAPTURE_EXCLUDE = [...MOUNT_TARGET_DIRS, ...MOUNT_TARGET_FILES];

/** runc's state dir for this cache dir (`runc --root`). */
export function runcStateDir(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'runc', 'state');
}

/** Where step temp dirs live (`<cacheDir>/runc/steps/step-PID-...`). */
export function runcStepsDir(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'runc', 'steps');
}

/** The step's inline files (heredoc scripts) on the host, outside the rootfs, for read-only binds. */
function writeInlineFiles(dir: string, files: NonNullable<RunRequest['inlineFiles']>): { destination: string; source: string }[] {
  if (!files.length) return [];
  fs.mkdirSync(dir, { mode: 0o755 });
  return files.map((f, i) => {
    const source = path.join(dir, String(i));
    fs.writeFileSync(source, f.content, { mode: f.mode & 0o7777 });
    fs.chmodSync(source, f.mode & 0o7777); // the umask must not take the exec bits
    return { destination: f.path, source };
  });
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

function copyRootMeta(st: fs.Stats, to: string): void {
  fs.chmodSync(to, st.mode & 0o7777);
  fs.chownSync(to, st.uid, st.gid);
}

export interface StepMode {
  /** In a user namespace: overlay with userxattr, /sys bound instead of mounted. */
  rootless: boolean;
}

/** Run one step here; the caller has checked runc exists. */
export async function runStepHere(runc: string, req: RunRequest, mode: StepMode): Promise<RunResult> {
  throwIfAborted(req.signal);
  checkMountTypes(req);
  const { chain } = req;
  // Steps of ocistack processes that died (kill -9): their container, mount and dir.
  await sweepStaleSteps({ runc, stateDir: runcStateDir(req.cacheDir), stepsDir: runcStepsDir(req.cacheDir) });
  const stepDir = path.join(runcStepsDir(req.cacheDir), tempName('step'));
  const dirs = { stubs: 'stubs', upper: 'upper', work: 'work', merged: 'merged', etc: 'etc', bundle: 'bundle' };
  const p = Object.fromEntries(Object.entries(dirs).map(([k, v]) => [k, path.join(stepDir, v)])) as typeof dirs;
  // The chain as layer snapshots (only layers not seen before are extracted), or flattened when too deep for one mount.
  const maxLowerChars = overlayLowerBudget({ lower: [p.stubs], upper: p.upper, work: p.work, merged: p.merged, userxattr: mode.rootless });
  const snap = await ensureRootfsLowers({ store: chain.store, layers: chain.layers, diffIds: chain.diffIds, cacheDir: req.cacheDir, signal: req.signal, onProgress: req.onProgress, maxLowerChars });
  // Reads before the mount go through the merged view of the snapshots (layer-view.ts), not a mount.
  const user = resolveRunUser(req.process.user, readAccountFiles(snap.view), req.location);

  fs.mkdirSync(runcStepsDir(req.cacheDir), { recursive: true });
  fs.mkdirSync(stepDir, { mode: 0o700 });
  trackTemp(stepDir);
  let mounted = false;
  let mounts: StepMounts | undefined;
  let container: RuncContainer | undefined;
  try {
    for (const d of [p.stubs, p.upper, p.work, p.merged, p.bundle]) fs.mkdirSync(d);
    mounts = await stepMounts(req, stepDir, mode.rootless);
    // The merged root shows the upper dir's own metadata: give it the image's.
    copyRootMeta(snap.view.lookup('')!.st, p.upper);
    makeStubLayer(snap.view, p.stubs, { dirs: [...MOUNT_TARGET_DIRS, ...mounts.stubDirs], files: [...MOUNT_TARGET_FILES, ...mounts.stubFiles] });
    await mountOverlay({ lower: [p.stubs, ...snap.lowers], cwd: snap.cwd, upper: p.upper, work: p.work, merged: p.merged, userxattr: mode.rootless });
    mounted = true;
    const etc = writeEtcFiles(p.etc, STEP_HOSTNAME, req.network);
    const inlineFiles = writeInlineFiles(path.join(stepDir, 'inline'), req.inlineFiles ?? []);
    const spec = runtimeSpec({ ...req.process, env: [...req.process.env, ...mounts.env], user, network: req.network, security: req.security, rootfs: p.merged, hostname: STEP_HOSTNAME, etc, boundingCaps: boundingCapabilities(), rootless: mode.rootless, inlineFiles, extraMounts: mounts.oci });
    fs.writeFileSync(path.join(p.bundle, 'config.json'), JSON.stringify(spec));
    const state = runcStateDir(req.cacheDir);
    fs.mkdirSync(state, { recursive: true, mode: 0o700 });
    container = { runc, root: state, bundle: p.bundle, id: path.basename(stepDir) };
    // The process counts against the CPU budget while it runs (never waits for it: lib/cpu-budget.ts).
    const running = container;
    const exitCode = await occupyCpu(() => runContainer(running, { onOutput: req.onOutput, signal: req.signal }));
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
    if (mounts) await releaseStepMounts(mounts);
    await removeTemp(stepDir).catch(() => undefined);
  }
}
