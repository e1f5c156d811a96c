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
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { removeTemp, sweepStaleTemps, tempName, tempNameIsStale, trackTemp } from '../temp-files.js';

export function activeBuildsDir(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'buildcache', 'active');
}

export interface ActiveBuild {
  release(): Promise<void>;
}

/** Mark a build as running on `cacheDir` until release (or process exit). */
export async function markBuildActive(cacheDir: string): Promise<ActiveBuild> {
  const dir = activeBuildsDir(cacheDir);
  await fsp.mkdir(dir, { recursive: true });
  await sweepStaleTemps(dir).catch(() => undefined);
  const file = path.join(dir, tempName('build'));
  trackTemp(file);
  await fsp.writeFile(file, `${process.pid}\n`);
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
