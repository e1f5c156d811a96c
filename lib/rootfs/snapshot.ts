/**
 * Flattened rootfs snapshots: an image's layer chain materialised once into
 * one directory and kept under the cache dir, keyed by the chain's ChainID.
 * (The runc executor uses per-layer snapshots, layer-snapshots.ts, and
 * these only for a chain too deep for one overlay mount; other callers,
 * e.g. a future copy-based executor, can use them directly.)
 *
 *   <cacheDir>/snapshots/<key>/rootfs          the file system
 *   <cacheDir>/snapshots/<key>/snapshot.json   what it was made from
 *   <cacheDir>/snapshots/tmp/<key>-PID-START-HOST-RAND/   one being made
 *
 * API: {@link ensureSnapshot} (the snapshot, made if missing),
 * {@link snapshotKey}, {@link snapshotsRoot}, {@link findSnapshotPrefix},
 * {@link removeTree}.
 *
 * A snapshot is made in a temp dir beside the final one and renamed into
 * place, so it is either complete or absent: a crash or an abort leaves only
 * a temp dir (removed on the way out, registered with lib/temp-files.ts for
 * Ctrl-C, or by the stale-temp sweep of the next process that makes one,
 * keyed on the owner in its name). Two callers racing both materialise; the
 * first rename wins and the other discards its copy and uses the winner's.
 *
 * Keys keep apart what must never mix: `<hex>` is made by real root,
 * `<hex>.unprivileged` without privileges (owners not kept, devices
 * skipped), `<hex>.userns-<8 hex>` by root of a user namespace (owners are
 * the namespace's ids, whose host ids depend on its mapping, hashed in).
 *
 * A snapshot's rootfs is shared and must be treated as read-only: an
 * executor runs on top of it (overlayfs lower dir, or a copy) and captures
 * its own change.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import { interruptedError } from '../abort.js';
import { digestHex } from '../image/digest.js';
import type { Digest } from '../image/types.js';
import { sweepStaleTemps, tempName, trackTemp, untrackTemp } from '../temp-files.js';
import { chainId, chainIds } from './chain-id.js';
import { materializeChain, type MaterializeOptions } from './materialize.js';
import type { RootfsWarning } from './warnings.js';

export interface SnapshotOptions extends Omit<MaterializeOptions, 'dest' | 'diffIds'> {
  /** The cache root (`defaultCacheDir()`); snapshots live in its `snapshots/` folder. */
  cacheDir: string;
  /** The config's rootfs.diff_ids, one per layer: they key the snapshot and are checked while extracting. */
  diffIds: readonly Digest[];
}

export interface Snapshot {
  /** ChainID of the layers (undefined for an image without layers). */
  chainId?: Digest;
  /** The snapshot directory (`<cacheDir>/snapshots/<key>`). */
  dir: string;
  /** The materialised file system inside it (read-only for callers). */
  rootfs: string;
  /** True when an existing snapshot was used, false when this call made it. */
  reused: boolean;
  /** What could not be reproduced when it was made. */
  warnings: RootfsWarning[];
}

interface SnapshotMeta {
  version: 1;
  chainId?: Digest;
  diffIds: Digest[];
  layers: Digest[];
  privileged: boolean;
  warnings: RootfsWarning[];
}

const META = 'snapshot.json';

let userns: string | undefined;

/**
 * '' in the initial user namespace; else `userns-` and 8 hex digits of
 * this namespace's uid and gid maps (the same mapping, the same owners on
 * disk, the same key).
 */
export function userNamespaceTag(): string {
  if (userns !== undefined) return userns;
  const read = (f: string): string => {
    try {
      return fs.readFileSync(f, 'utf8').trim().replace(/\s+/g, ' ');
    } catch {
      return '';
    }
  };
  const uid = read('/proc/self/uid_map');
  userns = uid === '' || uid === '0 0 4294967295' ? '' : `userns-${createHash('sha256').update(`${uid}|${read('/proc/self/gid_map')}`).digest('hex').slice(0, 8)}`;
  return userns;
}

/**
 * The snapshot folder's name for a chain: ChainID hex (`scratch` for no
 * layers), plus `.unprivileged` when made without privileges, or
 * `.userns-<tag>` when made by root of a user namespace.
 */
export function snapshotKey(diffIds: readonly Digest[], privileged: boolean): string {
  const base = diffIds.length === 0 ? 'scratch' : digestHex(chainId(diffIds));
  if (!privileged) return `${base}.unprivileged`;
  const tag = userNamespaceTag();
  return tag ? `${base}.${tag}` : base;
}

const swept = new Set<string>();

/**
 * A fresh temp dir `<root>/tmp/<key>-OWNER-RAND` for making a snapshot,
 * registered for removal on Ctrl-C; the first one a process makes below a
 * root sweeps those whose owner died (kill -9).
 */
export async function snapshotTempDir(root: string, key: string): Promise<string> {
  const dir = path.join(root, 'tmp');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!swept.has(dir)) {
    swept.add(dir);
    await sweepStaleTemps(dir);
  }
  const tmp = path.join(dir, tempName(key));
  fs.mkdirSync(tmp, { mode: 0o700 });
  trackTemp(tmp);
  return tmp;
}

/** Rename a finished temp dir into place; false when another caller put the same snapshot there first (the temp dir is then removed). */
export function publishSnapshot(tmp: string, dir: string): boolean {
  try {
    fs.renameSync(tmp, dir);
    untrackTemp(tmp);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw e;
    removeTree(tmp);
    untrackTemp(tmp);
    return false;
  }
}

export function snapshotsRoot(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'snapshots');
}

function readMeta(dir: string): SnapshotMeta | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, META), 'utf8')) as SnapshotMeta;
    return m.version === 1 ? m : undefined;
  } catch {
    return undefined;
  }
}

function defaultPrivileged(opts: { privileged?: boolean }): boolean {
  return opts.privileged ?? process.getuid?.() === 0;
}

/**
 * The longest prefix of the chain that already has a snapshot: how many
 * layers it covers and where it is, or undefined. (Used today only to
 * report; the basis for extending a snapshot later.)
 */
export function findSnapshotPrefix(cacheDir: string, diffIds: readonly Digest[], privileged = process.getuid?.() === 0): { layers: number; dir: string } | undefined {
  const ids = chainIds(diffIds);
  for (let n = ids.length; n >= 1; n--) {
    const dir = path.join(snapshotsRoot(cacheDir), snapshotKey(diffIds.slice(0, n), privileged));
    if (readMeta(dir)) return { layers: n, dir };
  }
  return undefined;
}

/** Remove a tree we made, also when some of its directories lost their write bit (unprivileged). */
export function removeTree(dir: string): void {
  untrackTemp(dir);
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EACCES' && (e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
  }
  const open = (p: string): void => {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st?.isDirectory()) return;
    fs.chmodSync(p, (st.mode & 0o7777) | 0o700);
    for (const n of fs.readdirSync(p)) open(path.join(p, n));
  };
  open(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The snapshot of `diffIds`, made now if it does not exist yet. */
export async function ensureSnapshot(opts: SnapshotOptions): Promise<Snapshot> {
  if (opts.diffIds.length !== opts.layers.length) {
    throw new OcistackError(`the image has ${opts.layers.length} layers but ${opts.diffIds.length} diff_ids`, {
      code: 'ROOTFS_DIFF_ID_MISMATCH',
      hint: 'the image config does not match its manifest; rebuild or pull the image again',
    });
  }
  const privileged = defaultPrivileged(opts);
  const root = snapshotsRoot(opts.cacheDir);
  const key = snapshotKey(opts.diffIds, privileged);
  const dir = path.join(root, key);
  const id = opts.diffIds.length ? chainId(opts.diffIds) : undefined;
  const existing = (reused: boolean): Snapshot | undefined => {
    const meta = readMeta(dir);
    return meta ? { chainId: id, dir, rootfs: path.join(dir, 'rootfs'), reused, warnings: meta.warnings } : undefined;
  };
  const found = existing(true);
  if (found) return found;

  fs.mkdirSync(root, { recursive: true });
  const tmp = await snapshotTempDir(root, key);
  try {
    const r = await materializeChain({ ...opts, privileged, dest: path.join(tmp, 'rootfs'), diffIds: opts.diffIds });
    const meta: SnapshotMeta = { version: 1, chainId: id, diffIds: [...opts.diffIds], layers: opts.layers.map((l) => l.digest), privileged, warnings: r.warnings };
    fs.writeFileSync(path.join(tmp, META), JSON.stringify(meta));
    if (opts.signal?.aborted) throw interruptedError('making the rootfs snapshot');
    // Someone else finished the same snapshot first: theirs is as good as ours.
    if (!publishSnapshot(tmp, dir)) {
      const theirs = existing(true);
      if (!theirs) throw new OcistackError(`the snapshot ${dir} is there but unreadable`, { code: 'ROOTFS_SNAPSHOT', hint: `remove ${dir} and retry` });
      return theirs;
    }
    return { chainId: id, dir, rootfs: path.join(dir, 'rootfs'), reused: false, warnings: r.warnings };
  } catch (e) {
    removeTree(tmp);
    throw e;
  }
}
