/**
 * The merged file system of a stack of overlay diff directories, looked up
 * the way overlayfs does, without mounting anything: what a RUN step's
 * rootfs will show, for the few reads made before the mount (USER's
 * /etc/passwd, the stub targets, the root's metadata) and for applying the
 * next layer in diff form (apply-layer.ts).
 *
 * A name is looked up one component at a time, top layer first:
 * - a 0/0 character device (overlay's whiteout) hides the name in every
 *   layer below;
 * - the first layer that has the name provides it; if that is not a
 *   directory, the layers below are not consulted;
 * - a directory is merged with the directories of the same name below it,
 *   down to (and including) a layer where it is opaque, and not beyond a
 *   non-directory of that name.
 * Opaque directories are the ones the layer's snapshot recorded (it set
 * the `overlay.opaque` xattr on them itself; layers never bring their own
 * overlay xattrs, see apply-layer.ts), so no xattr needs reading here.
 *
 * Only real directories are descended (lstat, never a host symlink), so a
 * lookup never leaves the layer directories. Results are memoised: the
 * layers are immutable snapshots.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ViewLayer {
  /** Absolute path of the layer's directory. */
  dir: string;
  /** Root-relative paths (no leading slash, '' for the root) of its opaque directories. */
  opaque: ReadonlySet<string>;
  /** Whether 0/0 character devices are whiteouts (false for a flattened rootfs, where one is a device node). */
  whiteouts: boolean;
}

export interface ViewEntry {
  /** lstat of the name in the layer that provides it. */
  st: fs.Stats;
  /** Its path on the host (in that layer's directory). */
  host: string;
}

interface Node extends ViewEntry {
  /** Indexes of the layers whose directory of this name takes part in the merge (top first). */
  dirs: number[];
}

/** A read-only view of the image file system; `rel` is an image path without the leading slash ('' is the root). */
export interface RootfsView {
  /** What the merged file system has at `rel` (parents must be directories, not symlinks), or undefined. */
  lookup(rel: string): ViewEntry | undefined;
}

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Overlay's whiteout: a character device with device number 0/0. */
export function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** The stack `layers` (top first) merged as overlayfs merges lower dirs. */
export class LayeredView implements RootfsView {
  private readonly memo = new Map<string, Node | undefined>();

  constructor(readonly layers: readonly ViewLayer[]) {}

  lookup(rel: string): ViewEntry | undefined {
    return this.node(rel);
  }

  /** Whether the directory `rel` of the merged view takes anything from the layers (false when absent or not a directory). */
  hasDir(rel: string): boolean {
    return !!this.node(rel)?.st.isDirectory();
  }

  private node(rel: string): Node | undefined {
    if (this.memo.has(rel)) return this.memo.get(rel);
    const n = rel === '' ? this.root() : this.child(rel);
    this.memo.set(rel, n);
    return n;
  }

  private root(): Node | undefined {
    if (this.layers.length === 0) return undefined;
    const dirs: number[] = [];
    for (const [i, l] of this.layers.entries()) {
      dirs.push(i);
      if (l.opaque.has('')) break;
    }
    return { st: fs.lstatSync(this.layers[0]!.dir), host: this.layers[0]!.dir, dirs };
  }

  private child(rel: string): Node | undefined {
    const parent = this.node(parentOf(rel));
    if (!parent?.st.isDirectory()) return undefined;
    let found: Node | undefined;
    for (const i of parent.dirs) {
      const layer = this.layers[i]!;
      const host = path.join(layer.dir, rel);
      const st = lstat(host);
      if (!st) continue;
      if (layer.whiteouts && isWhiteout(st)) break;
      if (!found) {
        found = { st, host, dirs: [] };
        if (!st.isDirectory()) break;
      } else if (!st.isDirectory()) break;
      found.dirs.push(i);
      if (layer.opaque.has(rel)) break;
    }
    return found;
  }
}
