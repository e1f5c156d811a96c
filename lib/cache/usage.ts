/**
 * What the cache dir holds and what uses it: the data behind
 * `ocistack cache ls`, `cache du` and `cache prune`.
 *
 * The cache dir is the BlobStore root (lib/image/store.ts):
 *   blobs/sha256/<hex>                  every blob (layers, configs, manifests)
 *   index.json                          local tags (lib/image/local-images.ts)
 *   index/sha256/<hex>.json             layer indexes, derived from one layer blob each
 *   buildcache/records/<hex>.json       instruction cache records (lib/cache/record.ts); mtime = last use
 *   buildcache/contexts/<hex>.json      context stat caches (lib/context/content-digests.ts)
 *   snapshots/<key>, snapshots/layers/<key>   rootfs snapshots, derived from layer blobs
 *   cache-mounts/<hex>                  RUN --mount=type=cache dirs (lib/executor/runc/step-mounts.ts)
 *   tmp/, snapshots/tmp/, runc/steps/, buildcache/tmp/   work in progress (owner-named)
 *
 * References: a record names its layer blobs; a local tag names a manifest
 * (or index), which names its config and layers (or child manifests). Pulls
 * record nothing but the blobs, so a manifest blob in the store is taken to
 * reference its children: a pulled base image keeps its layers as long as
 * its manifest is there.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isDigest } from '../image/digest.js';
import { listLocalImages } from '../image/local-images.js';
import { BlobStore } from '../image/store.js';
import type { Digest } from '../image/types.js';
import { ownerState } from '../process-owner.js';
import { listRecords, type ListedRecord } from './record.js';
import { statCachesDir } from '../context/content-digests.js';

export interface BlobInfo {
  digest: Digest;
  size: number;
  mtimeMs: number;
}

export interface PathInfo {
  path: string;
  /** Bytes of every file below it (apparent size). */
  size: number;
}

export interface SnapshotInfo extends PathInfo {
  /** The layer blobs it was made from (it is derived from them). */
  layers: Digest[];
}

export interface CacheMountInfo extends PathInfo {
  /** Its `.lock` is held by a live process (or one on another host). */
  locked: boolean;
}

export interface LayerIndexInfo extends PathInfo {
  layer: Digest;
}

export interface UsedRecord extends ListedRecord {
  /** Sum of the sizes of its layers. */
  size: number;
}

export interface CacheScan {
  root: string;
  records: UsedRecord[];
  blobs: Map<Digest, BlobInfo>;
  /** Blobs reachable from local tags (index.json). */
  tagged: Set<Digest>;
  /** How many local tags there are. */
  tags: number;
  /** Stored manifest and index blobs, with the blobs each names (children). */
  manifests: Map<Digest, Digest[]>;
  snapshots: SnapshotInfo[];
  cacheMounts: CacheMountInfo[];
  statCaches: PathInfo[];
  layerIndexes: LayerIndexInfo[];
}

/** Bytes of everything below `p` (a file: its size); 0 when missing. */
export async function treeSize(p: string): Promise<number> {
  const st = await fsp.lstat(p).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  const names = await fsp.readdir(p).catch(() => [] as string[]);
  for (const n of names) total += await treeSize(path.join(p, n));
  return total;
}

async function readdirSafe(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** The blobs a manifest or index names, or undefined when the bytes are not one. */
export function manifestChildren(bytes: Buffer): Digest[] | undefined {
  if (bytes[0] !== 0x7b /* { */) return undefined;
  let j: { config?: { digest?: string }; layers?: { digest?: string }[]; manifests?: { digest?: string }[] };
  try {
    j = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const out: string[] = [];
  if (Array.isArray(j.manifests)) for (const m of j.manifests) out.push(m?.digest ?? '');
  else if (Array.isArray(j.layers) && j.config) {
    out.push(j.config.digest ?? '');
    for (const l of j.layers) out.push(l?.digest ?? '');
  } else return undefined;
  return out.filter((d): d is Digest => isDigest(d));
}

/** Blobs small enough to be a manifest are read to find out. */
const MANIFEST_MAX = 4 << 20;

async function readJsonFile<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Whether the lock file is held by a process that is not provably dead. */
export async function lockHeld(lockFile: string): Promise<boolean> {
  const rec = await readJsonFile<{ pid: number; start: string; host: string; boot?: string }>(lockFile);
  if (rec === undefined) {
    // Unreadable but present: treat as held (never break what we cannot judge).
    return fsp.access(lockFile).then(() => true, () => false);
  }
  return typeof rec.pid !== 'number' || ownerState(rec) !== 'dead';
}

/** Everything `cache ls|du|prune` needs to know about a cache dir. */
export async function scanCache(cacheDir: string, opts: { sizes?: boolean } = {}): Promise<CacheScan> {
  const store = new BlobStore(cacheDir);
  const root = store.root;
  const sizes = opts.sizes ?? true;
  const blobs = new Map<Digest, BlobInfo>();
  const manifests = new Map<Digest, Digest[]>();
  const blobDir = path.join(root, 'blobs', 'sha256');
  for (const hex of await readdirSafe(blobDir)) {
    const digest = `sha256:${hex}`;
    if (!isDigest(digest)) continue;
    const st = await fsp.lstat(path.join(blobDir, hex)).catch(() => undefined);
    if (!st?.isFile()) continue;
    blobs.set(digest, { digest, size: st.size, mtimeMs: st.mtimeMs });
    if (st.size <= MANIFEST_MAX) {
      const fh = await fsp.open(path.join(blobDir, hex), 'r').catch(() => undefined);
      if (!fh) continue;
      try {
        const first = Buffer.alloc(1);
        await fh.read(first, 0, 1, 0);
        if (first[0] === 0x7b) {
          const children = manifestChildren(await fh.readFile());
          if (children) manifests.set(digest, children);
        }
      } finally {
        await fh.close();
      }
    }
  }
  const tagged = new Set<Digest>();
  // An unreadable index.json throws (CACHE_CORRUPT, with a hint): without the tags, prune could
  // not tell a local image's blobs from garbage.
  const images = await listLocalImages(store);
  const visit = (d: Digest, into: Set<Digest>): void => {
    if (into.has(d)) return;
    into.add(d);
    for (const c of manifests.get(d) ?? []) visit(c, into);
  };
  for (const [, d] of images) visit(d.digest, tagged);

  const records = (await listRecords(root)).map((r) => ({ ...r, size: r.record.layers.reduce((n, l) => n + l.size, 0) }));

  const snapshots: SnapshotInfo[] = [];
  const snapRoot = path.join(root, 'snapshots');
  for (const key of await readdirSafe(snapRoot)) {
    if (key === 'tmp' || key === 'layers') continue;
    const dir = path.join(snapRoot, key);
    const meta = await readJsonFile<{ layers?: Digest[] }>(path.join(dir, 'snapshot.json'));
    snapshots.push({ path: dir, size: sizes ? await treeSize(dir) : 0, layers: meta?.layers ?? [] });
  }
  for (const key of await readdirSafe(path.join(snapRoot, 'layers'))) {
    const dir = path.join(snapRoot, 'layers', key);
    const meta = await readJsonFile<{ layer?: Digest }>(path.join(dir, 'layer.json'));
    snapshots.push({ path: dir, size: sizes ? await treeSize(dir) : 0, layers: meta?.layer ? [meta.layer] : [] });
  }
  // A layer snapshot also needs every layer below it, but those have their own snapshot dirs
  // that go when their blob goes; the chain is rebuilt from whatever remains.

  const cacheMounts: CacheMountInfo[] = [];
  const mountsRoot = path.join(root, 'cache-mounts');
  for (const name of await readdirSafe(mountsRoot)) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const dir = path.join(mountsRoot, name);
    cacheMounts.push({ path: dir, size: sizes ? await treeSize(dir) : 0, locked: await lockHeld(`${dir}.lock`) });
  }

  const statCaches: PathInfo[] = [];
  for (const name of await readdirSafe(statCachesDir(root))) {
    if (!name.endsWith('.json')) continue;
    const p = path.join(statCachesDir(root), name);
    statCaches.push({ path: p, size: await treeSize(p) });
  }

  const layerIndexes: LayerIndexInfo[] = [];
  const indexDir = path.join(root, 'index', 'sha256');
  for (const name of await readdirSafe(indexDir)) {
    const m = /^([0-9a-f]{64})\.json$/.exec(name);
    if (!m) continue;
    const p = path.join(indexDir, name);
    layerIndexes.push({ path: p, size: await treeSize(p), layer: `sha256:${m[1]}` });
  }
  return { root, records, blobs, tagged, tags: images.length, manifests, snapshots, cacheMounts, statCaches, layerIndexes };
}

/** Blobs reachable from `roots` through manifests (roots included). */
export function reachable(scan: CacheScan, roots: Iterable<Digest>): Set<Digest> {
  const out = new Set<Digest>();
  const stack = [...roots];
  while (stack.length) {
    const d = stack.pop()!;
    if (out.has(d)) continue;
    out.add(d);
    stack.push(...(scan.manifests.get(d) ?? []));
  }
  return out;
}

export interface DiskUsage {
  records: { count: number; blobs: number; blobBytes: number };
  localImages: { count: number; blobs: number; blobBytes: number };
  /** Stored manifests that no tag names (pulled images, untagged builds), and what they reference. */
  pulledOrUntagged: { manifests: number; blobs: number; blobBytes: number };
  unreferenced: { blobs: number; blobBytes: number };
  snapshots: { count: number; bytes: number };
  cacheMounts: { count: number; bytes: number };
  statCaches: { count: number; bytes: number };
  layerIndexes: { count: number; bytes: number };
  totalBytes: number;
}

/**
 * Totals per kind. Each blob is counted once, in the first kind that
 * references it: records, then local images, then other stored manifests,
 * else unreferenced.
 */
export function diskUsage(scan: CacheScan): DiskUsage {
  const byRecords = new Set<Digest>();
  for (const r of scan.records) for (const l of r.record.layers) if (scan.blobs.has(l.digest)) byRecords.add(l.digest);
  const untaggedManifests = [...scan.manifests.keys()].filter((d) => !scan.tagged.has(d));
  const byManifests = reachable(scan, untaggedManifests);
  const sum = (ds: Iterable<Digest>): number => {
    let n = 0;
    for (const d of ds) n += scan.blobs.get(d)?.size ?? 0;
    return n;
  };
  const tagged = [...scan.tagged].filter((d) => scan.blobs.has(d) && !byRecords.has(d));
  const pulled = [...byManifests].filter((d) => scan.blobs.has(d) && !byRecords.has(d) && !scan.tagged.has(d));
  const counted = new Set([...byRecords, ...tagged, ...pulled]);
  const unref = [...scan.blobs.keys()].filter((d) => !counted.has(d));
  const total = (xs: PathInfo[]): number => xs.reduce((n, x) => n + x.size, 0);
  const u: DiskUsage = {
    records: { count: scan.records.length, blobs: byRecords.size, blobBytes: sum(byRecords) },
    localImages: { count: scan.tags, blobs: tagged.length, blobBytes: sum(tagged) },
    pulledOrUntagged: { manifests: untaggedManifests.length, blobs: pulled.length, blobBytes: sum(pulled) },
    unreferenced: { blobs: unref.length, blobBytes: sum(unref) },
    snapshots: { count: scan.snapshots.length, bytes: total(scan.snapshots) },
    cacheMounts: { count: scan.cacheMounts.length, bytes: total(scan.cacheMounts) },
    statCaches: { count: scan.statCaches.length, bytes: total(scan.statCaches) },
    layerIndexes: { count: scan.layerIndexes.length, bytes: total(scan.layerIndexes) },
    totalBytes: 0,
  };
  u.totalBytes = sum(scan.blobs.keys()) + u.snapshots.bytes + u.cacheMounts.bytes + u.statCaches.bytes + u.layerIndexes.bytes;
  return u;
}
