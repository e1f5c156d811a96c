/**
 * `ocistack cache prune`: remove what the cache dir holds and nothing needs.
 *
 *  default            blobs nothing references (no record, no local tag, no
 *                     stored manifest), snapshots made from a blob that is
 *                     gone, layer indexes of a blob that is gone, temp files
 *                     of dead processes. Records, local tags and pulled
 *                     images stay.
 *  --keep-storage N   then, while the build cache (every blob no local tag
 *                     needs, plus snapshots) is over N: pulled and untagged
 *                     manifests stop counting as references and records go,
 *                     least recently used first (record mtime = last use),
 *                     each with the blobs and snapshots only it needed; last,
 *                     the remaining snapshots.
 *  --all              every record, stat cache, snapshot, cache mount and
 *                     blob, except what local tags (`build -t`) need: like
 *                     `docker builder prune --all`, which leaves images alone.
 *
 * Safe next to a running build: prune holds the prune lock
 * (active-builds.ts) from its first look for running builds to its last
 * deletion, and a build takes it while it marks itself running, so no build
 * starts unseen in between. Records are removed before blobs (a build
 * reading a record sees it whole or not at all, lib/cache/record.ts); while
 * any build is running no blob, snapshot or cache mount is removed, only
 * records and stat caches, and the result says so. A temp file or lock of a
 * live process is never touched (stale ones are swept by owner,
 * lib/temp-files.ts); a cache mount whose lock is held stays.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { digestHex } from '../image/digest.js';
import type { Digest } from '../image/types.js';
import { removeTree } from '../rootfs/snapshot.js';
import { sweepStaleTemps } from '../temp-files.js';
import { liveBuildSigns, lockForPrune } from './active-builds.js';
import { reachable, scanCache, type CacheScan, type SnapshotInfo, type UsedRecord } from './usage.js';

export interface PruneOptions {
  cacheDir: string;
  /** Remove least recently used records until the build cache is at most this many bytes. */
  keepStorage?: number;
  all?: boolean;
  signal?: AbortSignal;
  /**
   * Test seam only (test/cache-prune-race.test.ts): awaited after the last
   * check for running builds, before the first blob or snapshot is deleted,
   * while the prune lock is held. Not for production use.
   */
  beforeDelete?: () => Promise<void>;
}

export interface PruneResult {
  records: number;
  blobs: number;
  snapshots: number;
  cacheMounts: number;
  statCaches: number;
  layerIndexes: number;
  temps: number;
  /** Bytes freed (apparent sizes). */
  freedBytes: number;
  /** Live builds seen: blobs, snapshots and cache mounts were kept. */
  runningBuilds: number;
  /** What was removed, for --verbose listings and tests. */
  removed: string[];
}

/** The build cache's size for --keep-storage: blobs outside `keep` (local tags' blobs) plus snapshots. */
function buildCacheBytes(scan: CacheScan, liveBlobs: Set<Digest>, snapshots: SnapshotInfo[]): number {
  let n = 0;
  for (const d of liveBlobs) if (!scan.tagged.has(d)) n += scan.blobs.get(d)?.size ?? 0;
  for (const s of snapshots) n += s.size;
  return n;
}

export async function pruneCache(opts: PruneOptions): Promise<PruneResult> {
  // No cache dir: nothing to remove, and taking the lock would create one.
  if (!(await fsp.stat(path.resolve(opts.cacheDir)).then((s) => s.isDirectory(), () => false))) {
    return { records: 0, blobs: 0, snapshots: 0, cacheMounts: 0, statCaches: 0, layerIndexes: 0, temps: 0, freedBytes: 0, runningBuilds: 0, removed: [] };
  }
  const lock = await lockForPrune(opts.cacheDir, opts.signal);
  try {
    return await pruneLocked(opts);
  } finally {
    await lock.release();
  }
}

async function pruneLocked(opts: PruneOptions): Promise<PruneResult> {
  // Builds running now are seen here or below; none can start until the lock is released.
  const liveAtStart = await liveBuildSigns(opts.cacheDir);
  const scan = await scanCache(opts.cacheDir);
  const root = scan.root;
  const res: PruneResult = { records: 0, blobs: 0, snapshots: 0, cacheMounts: 0, statCaches: 0, layerIndexes: 0, temps: 0, freedBytes: 0, runningBuilds: 0, removed: [] };
  const gone = (p: string, bytes: number): void => {
    res.removed.push(p);
    res.freedBytes += bytes;
  };

  // 1. Which records stay.
  let records: UsedRecord[] = [...scan.records];
  let manifestRoots = [...scan.manifests.keys()];
  const snapshotsKept = (blobs: Set<Digest>): SnapshotInfo[] => scan.snapshots.filter((s) => s.layers.length > 0 && s.layers.every((l) => blobs.has(l)));
  const keptBlobs = (): Set<Digest> => {
    const roots: Digest[] = [...scan.tagged, ...manifestRoots];
    for (const r of records) for (const l of r.record.layers) roots.push(l.digest);
    const out = reachable(scan, roots);
    for (const d of [...out]) if (!scan.blobs.has(d)) out.delete(d);
    return out;
  };
  let snapshots = snapshotsKept(keptBlobs());
  if (opts.all) {
    records = [];
    manifestRoots = [];
    snapshots = [];
  } else if (opts.keepStorage !== undefined) {
    if (buildCacheBytes(scan, keptBlobs(), snapshots) > opts.keepStorage) {
      manifestRoots = [];
      // Least recently used first.
      const byUse = [...records].sort((a, b) => a.lastUsedMs - b.lastUsedMs);
      for (;;) {
        const blobs = keptBlobs();
        snapshots = snapshotsKept(blobs);
        if (buildCacheBytes(scan, blobs, snapshots) <= opts.keepStorage) break;
        const drop = byUse.shift();
        if (!drop) {
          snapshots = [];
          break;
        }
        records = records.filter((r) => r !== drop);
      }
    }
  }

  // 2. Records first: once a record is gone no new build will reach its blobs through it.
  const keepRecords = new Set(records.map((r) => r.file));
  for (const r of scan.records) {
    if (keepRecords.has(r.file)) continue;
    const bytes = (await fsp.lstat(r.file).catch(() => undefined))?.size ?? 0;
    if (await fsp.unlink(r.file).then(() => true, () => false)) {
      res.records++;
      gone(r.file, bytes);
    }
  }
  if (opts.all) {
    for (const s of scan.statCaches) {
      if (await fsp.unlink(s.path).then(() => true, () => false)) {
        res.statCaches++;
        gone(s.path, s.size);
      }
    }
  }

  // 3. Temp files of dead processes (never a live one's).
  for (const dir of [path.join(root, 'tmp'), path.join(root, 'buildcache', 'tmp'), path.join(root, 'snapshots', 'tmp'), path.join(root, 'buildcache', 'active')]) {
    res.temps += (await sweepStaleTemps(dir).catch(() => [] as string[])).length;
  }

  // 4. Derived and stored data, only when no build is running. No build starts while the lock is
  //    held (it marks itself under the same lock); checked again for other writers' live temp files.
  const live = new Set([...liveAtStart, ...(await liveBuildSigns(root))]);
  res.runningBuilds = live.size;
  if (live.size > 0) return res;
  await opts.beforeDelete?.();

  const blobs = keptBlobs();
  const keepSnapshots = new Set(snapshots.map((s) => s.path));
  for (const s of scan.snapshots) {
    if (keepSnapshots.has(s.path)) continue;
    try {
      removeTree(s.path);
      res.snapshots++;
      gone(s.path, s.size);
    } catch {
      // busy (mounted) or not ours to remove: left for a later prune
    }
  }
  if (opts.all) {
    for (const m of scan.cacheMounts) {
      if (m.locked) continue;
      try {
        removeTree(m.path);
        await fsp.unlink(`${m.path}.lock`).catch(() => undefined);
        res.cacheMounts++;
        gone(m.path, m.size);
      } catch {
        // left for a later prune
      }
    }
  }
  for (const [digest, b] of scan.blobs) {
    if (blobs.has(digest)) continue;
    const file = path.join(root, 'blobs', 'sha256', digestHex(digest));
    if (await fsp.unlink(file).then(() => true, () => false)) {
      res.blobs++;
      gone(file, b.size);
    }
  }
  for (const ix of scan.layerIndexes) {
    if (blobs.has(ix.layer)) continue;
    if (await fsp.unlink(ix.path).then(() => true, () => false)) {
      res.layerIndexes++;
      gone(ix.path, ix.size);
    }
  }
  return res;
}
