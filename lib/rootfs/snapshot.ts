/**
 * Rootfs snapshots: an image's layer chain materialised once and kept under
 * the cache dir, keyed by the chain's ChainID, so the next RUN and the next
 * build start from it instead of extracting again.
 *
 *   <cacheDir>/snapshots/<chainid-hex>/rootfs          the file system
 *   <cacheDir>/snapshots/<chainid-hex>/snapshot.json   what it was made from
 *   <cacheDir>/snapshots/tmp/<key>-<pid>-<random>/     one being made
 *
 * A snapshot is made in a temp dir beside the final one and renamed into
 * place, so it is either complete or absent: a crash or an abort leaves only
 * a temp dir (removed on the way out, or by a stale-temp sweep keyed on the
 * pid in its name). Two callers racing both materialise; the first rename
 * wins and the other discards its copy and uses the winner's. A snapshot
 * made without privileges (owners not kept, devices skipped) has its own
 * key (`<hex>.unprivileged`), so a privileged caller never reuses it.
 *
 * A snapshot's rootfs is shared and must be treated as read-only: an
 * executor runs on top of it (overlayfs lower dir, or a copy) and captures
 * its own change.
 *
 * Extending (not done yet, the API is ready for it): materialising L1..Ln+1
 * when the snapshot of L1..Ln exists currently extracts the whole chain
 * again. {@link findSnapshotPrefix} already finds the longest existing
 * prefix; a later version can overlay-mount that prefix as a lower dir and
 * apply only Ln+1 (or reflink-copy it and apply Ln+1 in place) before the
 * same rename.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import { interruptedError } from '../abort.js';
import { digestHex } from '../image/digest.js';
import type { Digest } from '../image/types.js';
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

/** The snapshot folder's name for a chain: ChainID hex, `scratch` for no layers, `.unprivileged` when made without privileges. */
export function snapshotKey(diffIds: readonly Digest[], privileged: boolean): string {
  const base = diffIds.length === 0 ? 'scratch' : digestHex(chainId(diffIds));
  return privileged ? base : `${base}.unprivileged`;
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

  const tmp = path.join(root, 'tmp', `${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
  try {
    const r = await materializeChain({ ...opts, privileged, dest: path.join(tmp, 'rootfs'), diffIds: opts.diffIds });
    const meta: SnapshotMeta = { version: 1, chainId: id, diffIds: [...opts.diffIds], layers: opts.layers.map((l) => l.digest), privileged, warnings: r.warnings };
    fs.writeFileSync(path.join(tmp, META), JSON.stringify(meta));
    if (opts.signal?.aborted) throw interruptedError('making the rootfs snapshot');
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Someone else finished the same snapshot first: theirs is as good as ours.
      const theirs = code === 'EEXIST' || code === 'ENOTEMPTY' ? existing(true) : undefined;
      if (!theirs) throw e;
      removeTree(tmp);
      return theirs;
    }
    return { chainId: id, dir, rootfs: path.join(dir, 'rootfs'), reused: false, warnings: r.warnings };
  } catch (e) {
    removeTree(tmp);
    throw e;
  }
}
