/**
 * Layered rootfs snapshots, as containerd's overlayfs snapshotter keeps
 * them: each layer of a chain in its own directory, in overlay diff form
 * (apply-layer.ts's diff mode: whiteouts as 0/0 character devices, opaque
 * directories as an `overlay.opaque` xattr), keyed by the ChainID of the
 * chain prefix that ends at it. A step's rootfs is then an overlay mount of
 * those directories as lower dirs; nothing already there is extracted
 * again, and a snapshot is shared by every chain that starts the same way.
 * So a RUN after a RUN applies only the layer the previous RUN wrote (cost:
 * that layer, not the chain).
 *
 *   <cacheDir>/snapshots/layers/<key>/fs           the layer's diff dir
 *   <cacheDir>/snapshots/layers/<key>/layer.json   what it was made from,
 *                                                  and its opaque dirs
 *   <cacheDir>/snapshots/tmp/<key>-OWNER-RAND/     one being made
 *
 * `<key>` is snapshot.ts's {@link snapshotKey} of the prefix (so root,
 * unprivileged and user-namespace snapshots never mix: their owners and
 * their opaque xattr, `trusted.` or `user.overlay.opaque`, differ).
 *
 * API: {@link ensureLayerSnapshots} (the chain's diff dirs, made bottom up
 * where missing) and {@link ensureRootfsLowers} (what an overlay mount
 * needs: lower dirs relative to one directory, to keep the mount options
 * short; falling back to a flattened snapshot, snapshot.ts, when the chain
 * is too deep for one mount's option page).
 *
 * Each diff dir is made as a flattened snapshot is: in a temp dir, renamed
 * into place (complete or absent), racing callers both make it and the
 * loser uses the winner's, an abort or error removes the temp dir, stale
 * temp dirs of dead processes are swept. Diff dirs are read-only for
 * everyone once in place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import { interruptedError } from '../abort.js';
import type { Digest } from '../image/types.js';
import { LayerApplier } from './apply-layer.js';
import { chainIds } from './chain-id.js';
import { LayeredView, type RootfsView, type ViewLayer } from './layer-view.js';
import { readLayerEntries } from './read-layer.js';
import { ensureSnapshot, publishSnapshot, removeTree, snapshotKey, snapshotsRoot, snapshotTempDir, userNamespaceTag, type SnapshotOptions } from './snapshot.js';
import { RootfsWarnings, type RootfsWarning } from './warnings.js';

interface LayerMeta {
  version: 1;
  chainId: Digest;
  diffId: Digest;
  layer: Digest;
  privileged: boolean;
  /** The opaque marker used. */
  opaqueXattr: string;
  /** Root-relative paths of the directories marked opaque. */
  opaque: string[];
  warnings: RootfsWarning[];
}

const META = 'layer.json';

export interface LayerSnapshot {
  /** `<cacheDir>/snapshots/layers/<key>`. */
  dir: string;
  /** Its key (the folder's name). */
  key: string;
  /** ChainID of the prefix that ends at this layer. */
  chainId: Digest;
  /** The diff dir (`<dir>/fs`). */
  fs: string;
  opaque: string[];
  /** True when this call made it. */
  made: boolean;
}

export interface LayerSnapshots {
  /** One per layer, base first. */
  layers: LayerSnapshot[];
  /** The merged view of all of them (what the overlay mount will show). */
  view: LayeredView;
  /** How many layers this call applied (0: everything was there). */
  applied: number;
  opaqueXattr: string;
  warnings: RootfsWarning[];
}

/** Where the layer snapshots of a cache dir live (the cwd for relative lower dirs). */
export function layerSnapshotsRoot(cacheDir: string): string {
  return path.join(snapshotsRoot(cacheDir), 'layers');
}

/**
 * The opaque xattr this process can set and a mount by this process will
 * read: `trusted.overlay.opaque` as real root, `user.overlay.opaque` in a
 * user namespace or without privileges (overlay's `userxattr`).
 */
export function opaqueXattrName(privileged: boolean): string {
  return privileged && userNamespaceTag() === '' ? 'trusted.overlay.opaque' : 'user.overlay.opaque';
}

function readMeta(dir: string): LayerMeta | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, META), 'utf8')) as LayerMeta;
    return m.version === 1 ? m : undefined;
  } catch {
    return undefined;
  }
}

function viewLayer(s: LayerSnapshot): ViewLayer {
  return { dir: s.fs, opaque: new Set(s.opaque), whiteouts: true };
}

function mismatch(layers: number, diffIds: number): OcistackError {
  return new OcistackError(`the image has ${layers} layers but ${diffIds} diff_ids`, {
    code: 'ROOTFS_DIFF_ID_MISMATCH',
    hint: 'the image config does not match its manifest; rebuild or pull the image again',
  });
}

/** The diff dir of every layer of the chain, applying (bottom up) only those not there yet. */
export async function ensureLayerSnapshots(opts: SnapshotOptions): Promise<LayerSnapshots> {
  if (opts.diffIds.length !== opts.layers.length) throw mismatch(opts.layers.length, opts.diffIds.length);
  const privileged = opts.privileged ?? process.getuid?.() === 0;
  const opaqueXattr = opaqueXattrName(privileged);
  const root = layerSnapshotsRoot(opts.cacheDir);
  const ids = chainIds(opts.diffIds);
  const done: LayerSnapshot[] = [];
  const all: RootfsWarning[] = [];
  let applied = 0;
  for (const [i, layer] of opts.layers.entries()) {
    const key = snapshotKey(opts.diffIds.slice(0, i + 1), privileged);
    const dir = path.join(root, key);
    const found = (made: boolean): LayerSnapshot | undefined => {
      const m = readMeta(dir);
      if (!m) return undefined;
      if (!made) all.push(...m.warnings);
      return { dir, key, chainId: ids[i]!, fs: path.join(dir, 'fs'), opaque: m.opaque, made };
    };
    const have = found(false);
    if (have) {
      done.push(have);
      continue;
    }
    fs.mkdirSync(root, { recursive: true });
    const tmp = await snapshotTempDir(snapshotsRoot(opts.cacheDir), key);
    try {
      const dest = path.join(tmp, 'fs');
      fs.mkdirSync(dest, { mode: 0o755 });
      const lowers = new LayeredView([...done].reverse().map(viewLayer));
      const layerWarnings = new RootfsWarnings(opts.onProgress);
      const applier = new LayerApplier({ dest, privileged, warnings: layerWarnings, diff: { lowers, opaqueXattr } }, layer.digest);
      let ok = false;
      let diffId: Digest;
      try {
        diffId = await readLayerEntries(opts.store, layer.digest, (entry, xattrs, fail) => applier.apply(entry, xattrs, fail), { signal: opts.signal });
        ok = true;
      } finally {
        applier.finish(ok);
      }
      if (diffId !== opts.diffIds[i]) {
        throw new OcistackError(`layer ${layer.digest} has diff_id ${diffId}, but the image config says ${opts.diffIds[i]}`, {
          code: 'ROOTFS_DIFF_ID_MISMATCH',
          hint: 'the image config does not match its layers; rebuild or pull the image again',
        });
      }
      const meta: LayerMeta = { version: 1, chainId: ids[i]!, diffId, layer: layer.digest, privileged, opaqueXattr, opaque: applier.opaque(), warnings: layerWarnings.list() };
      fs.writeFileSync(path.join(tmp, META), JSON.stringify(meta));
      if (opts.signal?.aborted) throw interruptedError('making the rootfs snapshot');
      applied++;
      all.push(...meta.warnings);
      // Lost a race: the winner's diff dir is the same layer applied to the same lowers.
      const mine = publishSnapshot(tmp, dir);
      const snap = found(mine);
      if (!snap) throw new OcistackError(`the layer snapshot ${dir} is there but unreadable`, { code: 'ROOTFS_SNAPSHOT', hint: `remove ${dir} and retry` });
      done.push(snap);
    } catch (e) {
      removeTree(tmp);
      throw e;
    }
  }
  return { layers: done, view: new LayeredView([...done].reverse().map(viewLayer)), applied, opaqueXattr, warnings: all };
}

export interface RootfsLowers {
  /** 'layers': one diff dir per layer; 'flattened': the whole chain in one dir (too deep, or no layers). */
  form: 'layers' | 'flattened';
  /** The directory the lower dirs are relative to: run the mount with this cwd. */
  cwd: string;
  /** Overlay lower dirs, top first, relative to {@link cwd}. */
  lowers: string[];
  /** The file system the mount will show, for reads before it (USER, stub targets, the root's metadata). */
  view: RootfsView;
  /** Layers extracted by this call (0: all reused). */
  applied: number;
  /** The opaque xattr the lower dirs use (mount with `userxattr` iff it is `user.overlay.opaque`). */
  opaqueXattr: string;
  warnings: RootfsWarning[];
}

export interface RootfsLowersOptions extends SnapshotOptions {
  /** Characters the lower dirs may take in the mount options (joined with ':'); more means the flattened fallback. */
  maxLowerChars: number;
  /** Most lower dirs one mount may have (overlay's limit is 500, the caller's own lower dirs included). */
  maxLowers?: number;
}

/**
 * The chain as overlay lower dirs: its layer snapshots, or when their
 * relative paths do not fit `maxLowerChars` (or there are no layers) one
 * flattened snapshot of the whole chain.
 */
export async function ensureRootfsLowers(opts: RootfsLowersOptions): Promise<RootfsLowers> {
  if (opts.diffIds.length !== opts.layers.length) throw mismatch(opts.layers.length, opts.diffIds.length);
  const privileged = opts.privileged ?? process.getuid?.() === 0;
  const keys = opts.diffIds.map((_, i) => snapshotKey(opts.diffIds.slice(0, i + 1), privileged));
  const chars = keys.reduce((n, k) => n + k.length + '/fs:'.length, 0);
  if (keys.length > 0 && chars - 1 <= opts.maxLowerChars && keys.length <= (opts.maxLowers ?? 499)) {
    const s = await ensureLayerSnapshots(opts);
    return { form: 'layers', cwd: layerSnapshotsRoot(opts.cacheDir), lowers: s.layers.map((l) => `${l.key}/fs`).reverse(), view: s.view, applied: s.applied, opaqueXattr: s.opaqueXattr, warnings: s.warnings };
  }
  const flat = await ensureSnapshot(opts);
  return {
    form: 'flattened',
    cwd: snapshotsRoot(opts.cacheDir),
    lowers: [`${path.basename(flat.dir)}/rootfs`],
    view: new LayeredView([{ dir: flat.rootfs, opaque: new Set(), whiteouts: false }]),
    applied: flat.reused ? 0 : opts.layers.length,
    opaqueXattr: opaqueXattrName(privileged),
    warnings: flat.warnings,
  };
}
