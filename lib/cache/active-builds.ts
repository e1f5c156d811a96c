/**
 * Which builds are running on a cache dir, so `ocistack cache prune` never
 * deletes a blob or snapshot a running build is about to use.
 *
 * A build marks itself with an owner-named file
 * `<cacheDir>/buildcache/active/build-PID-START-HOST-RAND` (lib/temp-files.ts
 * names: a process killed with -9 leaves a marker that is provably stale and
 * swept). Builds of older ocistack versions left no marker, so other signs of
 * a live build count too: owner-named temp files of live processes in the
 * store's tmp/, snapshots/tmp/ and runc/steps/.
 *
 * The marker alone leaves a window: a build that marks itself just after
 * prune looked for markers is not seen, and prune deletes what it is about
 * to use. So both sides take the prune lock `<cacheDir>/buildcache/prune.lock`
 * (lib/lock.ts: a killed holder's lock is recovered at once): prune holds it
 * from its first check for running builds to its last deletion, a build
 * only while it writes its marker. Either prune sees the marker (and keeps
 * every blob, snapshot and cache mount), or the build marks itself after
 * prune is done. Snapshots need no lock of their own: a build uses a
 * snapshot only while its marker exists, and prune removes snapshots only
 * when it holds the lock and saw no marker.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { acquireLock, withLock, type HeldLock } from '../lock.js';
import { removeTemp, sweepStaleTemps, tempName, tempNameIsStale, trackTemp } from '../temp-files.js';

export function activeBuildsDir(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'buildcache', 'active');
}

export function pruneLockPath(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'buildcache', 'prune.lock');
}

/**
 * How long a build or a prune waits for a prune that holds the lock: a
 * prune of a big cache takes seconds; a dead one's lock is recovered at
 * once, so this limit is only met by a live prune that hangs.
 */
const PRUNE_LOCK_WAIT_MS = 10 * 60_000;

/** Take the prune lock (see the module comment): a prune holds it while it checks and deletes. */
export function lockForPrune(cacheDir: string, signal?: AbortSignal): Promise<HeldLock> {
  return acquireLock(pruneLockPath(cacheDir), { waitMs: PRUNE_LOCK_WAIT_MS, signal, what: 'the build cache (another `ocistack cache prune` is running)' });
}

export interface ActiveBuild {
  release(): Promise<void>;
}

/** Mark a build as running on `cacheDir` until release (or process exit); waits while a prune runs. */
export async function markBuildActive(cacheDir: string, signal?: AbortSignal): Promise<ActiveBuild> {
  const dir = activeBuildsDir(cacheDir);
  await fsp.mkdir(dir, { recursive: true });
  await sweepStaleTemps(dir).catch(() => undefined);
  const file = path.join(dir, tempName('build'));
  await withLock(
    pruneLockPath(cacheDir),
    async () => {
      trackTemp(file);
      await fsp.writeFile(file, `${process.pid}\n`);
    },
    { waitMs: PRUNE_LOCK_WAIT_MS, signal, what: 'the build cache (`ocistack cache prune` is running)' },
  );
  return { release: () => removeTemp(file) };
}

/** Owner-named entries of live processes (not this one's) in the places a build writes. */
export async function liveBuildSigns(cacheDir: string): Promise<string[]> {
  const root = path.resolve(cacheDir);
  const dirs = [activeBuildsDir(root), path.join(root, 'tmp'), path.join(root, 'snapshots', 'tmp'), path.join(root, 'runc', 'steps'), path.join(root, 'buildcache', 'tmp')];
  const mine = `-${process.pid}-`;
  const out: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const st = await fsp.lstat(path.join(dir, name)).catch(() => undefined);
      if (!st) continue;
      // Only owner-named entries are judged; tempNameIsStale is false for live owners and unknown names alike.
      if (!/-\d+-\d+-[0-9a-f]{8}-[0-9a-f]{8,}$/.test(name) || name.includes(mine)) continue;
      if (!tempNameIsStale(name, st.mtimeMs)) out.push(path.join(dir, name));
    }
  }
  return out;
}
