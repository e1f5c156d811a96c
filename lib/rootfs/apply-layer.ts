/**
 * Apply one layer's tar entries to a directory that holds the layers below
 * it, the way the OCI image spec's "Applying Changesets" describes:
 * `.wh.NAME` removes NAME of a lower layer, `.wh..wh..opq` hides everything
 * a lower layer had in its directory, and an entry replaces what was at its
 * path (except a directory over a directory, which is merged).
 *
 * Safety (no entry may write outside the root):
 * - names are cleaned lexically; one that climbs above the root (`../x`,
 *   `a/../../x`) fails the layer (ROOTFS_UNSAFE_ENTRY), as Docker's
 *   "breakout" check does; a leading `/` is dropped (GNU tar does the same);
 * - every parent directory is resolved with lib/scoped-path.ts against the
 *   rootfs itself (lstat/readlink under the root, absolute targets restart
 *   at the root, `..` stops there), never by the host's path resolution, so a
 *   symlink `a -> /etc` or `a -> ../../..` leads to the rootfs' own /etc or
 *   its root; what the resolver returns contains no symlink, and missing
 *   parents are created with mkdir on that symlink-free path;
 * - the final component is never followed: what is there is removed first
 *   and files are created with O_CREAT|O_EXCL|O_NOFOLLOW;
 * - hard-link targets are resolved the same way (their own last component
 *   not followed, as link(2) does not follow it), must exist and must not be
 *   a directory; a target that climbs out fails the layer;
 * - whiteouts and opaque markers resolve their directory the same way and
 *   remove only below it.
 * The rootfs is assumed to be written by nobody else meanwhile (a private
 * temp dir), so a path checked here stays as checked.
 *
 * Within one layer, a whiteout or opaque marker never removes what the same
 * layer wrote (the spec: whiteouts apply to lower layers only), as
 * containerd's applier does with its set of unpacked paths.
 *
 * Diff form (`ctx.diff`): instead of changing a rootfs that holds the
 * layers below, the layer is written into an empty directory in overlayfs'
 * own format, to be stacked as a lower dir above the diff dirs of the layers
 * below (as containerd's overlayfs snapshotter stores layers). Every lookup
 * (parents, symlinks, hard-link targets, "does the lower have it") goes to
 * the merged view of this dir over the lowers (layer-view.ts), every write
 * to this dir only, with the same safety rules as above; the lowers are
 * never written. A whiteout becomes a 0/0 character device (only when a
 * lower has the name), an opaque marker the xattr `trusted.overlay.opaque=y`
 * (`user.overlay.opaque` for a userxattr overlay in a user namespace) on
 * the directory, and so does a directory made new where a lower has one
 * (it replaced something in this layer). A directory of a lower that this
 * layer changes inside is copied up first with the lower's mode, owner,
 * times and xattrs (as containerd copies parent directories' info), since
 * overlay shows the top layer's metadata for a merged directory. The layer
 * cannot bring overlay xattrs of its own (skipped with a warning) nor a 0/0
 * character device (it would read as a whiteout: skipped with a warning).
 * Whiteouts, opaque xattrs and the lowers' xattrs are made in one batch at
 * the end of the layer (one process each, not one per file).
 *
 * Metadata: owner (lchown) before mode (chown clears setuid/setgid and
 * security.capability), then xattrs, then times. Hard links get none of it
 * (they share the inode with their target). A directory's times are set at
 * the end of the layer, after its children were written; a lower directory
 * whose children this layer changed gets its previous times back (as umoci
 * restores a parent's mtime after each entry).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ReadEntry } from 'tar';
import { OcistackError } from '../errors.js';
import type { Digest } from '../image/types.js';
import { resolveInRootSync } from '../scoped-path.js';
import { isWhiteout, type LayeredView } from './layer-view.js';
import { FileWriters, fileWriterThreads } from './file-writers.js';
import { makeDevice, makeFifo, makeWhiteouts, readXattrsOf, setXattr } from './special-files.js';
import type { RootfsWarnings } from './warnings.js';

export interface DiffTarget {
  /** The merged view of the layers below (their diff dirs, top first). */
  lowers: LayeredView;
  /** The opaque marker's xattr: `trusted.overlay.opaque` (root) or `user.overlay.opaque` (userxattr). */
  opaqueXattr: string;
}

export interface ApplyContext {
  /** Absolute path of the rootfs directory (diff form: of the layer's own, empty, diff directory). */
  dest: string;
  /** May chown to any id and create device nodes (root, also root in a user namespace). */
  privileged: boolean;
  warnings: RootfsWarnings;
  /** Write the layer in overlay diff form above these lowers instead of applying it to `dest`'s contents. */
  diff?: DiffTarget;
}

/** What the applier sees at a path: in flattened form `dest` itself, in diff form this layer's dir over the lowers. */
interface Seen {
  st: fs.Stats;
  /** Host path of what is seen (in `dest`, or in a lower's dir). */
  host: string;
  /** It is in `dest` (always, in flattened form). */
  own: boolean;
  /** Diff form, a directory: the lowers' directory of that name is merged into it. */
  lowers: boolean;
}

interface Times {
  atime: number;
  mtime: number;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

/** Files up to this size may go to the worker threads (file-writers.ts); bigger ones stream on this thread. */
const THREADED_MAX_FILE = 64 * 1024;
/** A layer's small files go to the worker threads after this many (starting them is not worth it for a few). */
const THREADED_AFTER = 128;

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function seconds(d: Date | undefined): number | undefined {
  return d ? d.getTime() / 1000 : undefined;
}

/** Applies the entries of one layer; make one per layer, call {@link finish} after the last entry. */
export class LayerApplier {
  /** Root-relative paths (no leading slash) this layer wrote, and their parents. */
  private readonly written = new Set<string>();
  /** Directories whose children changed: their times before the change. */
  private readonly touched = new Map<string, Times>();
  /** Directories this layer has a header for: the header's times. */
  private readonly dirHeaders = new Map<string, Times>();
  /** Unprivileged: directories made writable for the layer, and the mode to put back. */
  private readonly restoreModes = new Map<string, number>();
  private openFd: number | undefined;
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;
  /** Diff form: whiteouts to make at the end (a lookup already treats them as made). */
  private readonly pendingWhiteouts = new Set<string>();
  /** Diff form: opaque directories of this layer (their xattr is set at the end). */
  private readonly opaqueDirs = new Set<string>();
  /** Diff form: directories copied up from a lower: the lower's host path, for its xattrs. */
  private readonly copiedUp = new Map<string, string>();
  /** Xattr names a directory header set (they win over the copied-up lower's). */
  private readonly headerXattrs = new Map<string, Set<string>>();
  /**
   * Real directories of `dest` itself (diff form: already copied up), known
   * without an lstat: made or checked by this applier, and forgotten when
   * this applier removes them (nobody else writes `dest`, see above). Without
   * it every entry re-lstats each of its parents, once per parent while
   * resolving and again in ensureDir: ~d² syscalls for a file at depth d,
   * which made node_modules layers cost over 1 ms per file.
   */
  private readonly ownDirs = new Set<string>(['']);
  /** Small files written by worker threads (file-writers.ts), once the layer has had {@link THREADED_AFTER} of them. */
  private writers: FileWriters | undefined;
  private smallFiles = 0;
  private readonly threads = fileWriterThreads();

  constructor(
    private readonly ctx: ApplyContext,
    private readonly layer: Digest,
  ) {
    const diff = ctx.diff;
    if (diff?.lowers.hasDir('')) {
      // The merged root shows the top layer's metadata: start from the lowers'.
      this.copyMeta('', diff.lowers.lookup('')!.st, diff.lowers.lookup('')!.host);
    }
  }

  /** Root-relative paths of the directories this layer made opaque (diff form), after {@link finish}. */
  opaque(): string[] {
    return [...this.opaqueDirs].sort();
  }

  // --- paths ---------------------------------------------------------------

  private abs(rel: string): string {
    return rel === '' ? this.ctx.dest : path.join(this.ctx.dest, rel);
  }

  /** What `dest` itself has at `rel` (its parents are directories of `dest` or absent, never symlinks). */
  private own(rel: string): fs.Stats | undefined {
    // A file handed to the writer threads is only there once they are done.
    if (this.writers?.paths.has(rel)) this.settle();
    try {
      // throwIfNoEntry: a missing name (the usual case, a new entry) costs no Error and stack trace.
      return fs.lstatSync(this.abs(rel), { throwIfNoEntry: false });
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
      throw e;
    }
  }

  /** What the layer sees at `rel`: `dest`, or in diff form `dest` over the lowers. */
  private seen(rel: string): Seen | undefined {
    const diff = this.ctx.diff;
    if (!diff) {
      const st = this.own(rel);
      return st && { st, host: this.abs(rel), own: true, lowers: false };
    }
    if (rel === '') return { st: fs.lstatSync(this.ctx.dest), host: this.ctx.dest, own: true, lowers: !this.opaqueDirs.has('') && diff.lowers.hasDir('') };
    const parentRel = this.parentOf(rel);
    const parent = this.ownDirs.has(parentRel) ? { own: true, lowers: this.ownDirLowers(parentRel, diff) } : this.seen(parentRel);
    if (!parent || ('st' in parent && !parent.st.isDirectory())) return undefined;
    let mine: fs.Stats | undefined;
    if (parent.own) {
      if (this.pendingWhiteouts.has(rel)) return undefined;
      mine = this.own(rel);
      if (mine && !mine.isDirectory()) return { st: mine, host: this.abs(rel), own: true, lowers: false };
    }
    const low = parent.lowers ? diff.lowers.lookup(rel) : undefined;
    if (mine) return { st: mine, host: this.abs(rel), own: true, lowers: !this.opaqueDirs.has(rel) && !!low?.st.isDirectory() };
    return low && { st: low.st, host: low.host, own: false, lowers: low.st.isDirectory() };
  }

  /**
   * Diff form: whether the lowers' directory `rel` is merged into `dest`'s
   * directory `rel` (one of {@link ownDirs}), as {@link seen} computes its
   * `lowers`: every parent merges, and `rel` is not opaque and a lower
   * directory. In memory only (the view memoises its lookups).
   */
  private ownDirLowers(rel: string, diff: DiffTarget): boolean {
    if (this.opaqueDirs.has(rel) || !diff.lowers.hasDir(rel)) return false;
    return rel === '' || this.ownDirLowers(this.parentOf(rel), diff);
  }

  private lstat(rel: string): fs.Stats | undefined {
    return this.seen(rel)?.st;
  }

  /** For the scoped resolver: the target of the symlink at `rel` inside the rootfs, else undefined. */
  private readonly linkTarget = (rel: string): string | undefined => {
    if (this.ownDirs.has(rel)) return undefined;
    const s = this.seen(rel);
    return s?.st.isSymbolicLink() ? fs.readlinkSync(s.host) : undefined;
  };

  private unsafe(what: string, name: string, why: string): OcistackError {
    return new OcistackError(`layer ${this.layer}: ${what} "${name}" ${why}`, {
      code: 'ROOTFS_UNSAFE_ENTRY',
      hint: 'the layer is malformed or hostile; rebuild it or use another base image',
    });
  }

  /** Lexically clean a tar name into components; climbing above the root is refused. */
  private clean(name: string, what: string): string[] {
    const out: string[] = [];
    for (const part of name.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (out.length === 0) throw this.unsafe(what, name, 'points outside the root file system');
        out.pop();
      } else out.push(part);
    }
    return out;
  }

  /** The real root-relative path of `parts` (parents always followed, the last one when `followFinal`). */
  private resolve(parts: string[], followFinal: boolean): string {
    return resolveInRootSync(parts.join('/'), followFinal, this.linkTarget, '/' + parts.join('/'));
  }

  /** Create the missing directories of a resolved (symlink-free) path. */
  private ensureDir(rel: string, name: string): void {
    if (rel === '') return;
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      // Made or checked (and copied up) before, by this applier: no lstat. (Still written: a directory
      // copied up for a hard link's target is in ownDirs but was not written until an entry goes below it.)
      if (this.ownDirs.has(sub)) {
        this.written.add(sub);
        continue;
      }
      const st = this.lstat(sub);
      if (!st) {
        this.touch(parts.slice(0, i - 1).join('/'));
        this.makeOwnDir(sub, 0o755);
      } else if (st.isSymbolicLink()) {
        // The resolver returned a path without links; finding one means the tree changed under us.
        throw this.unsafe('entry', name, `has a parent ${sub} that is a symlink after resolution`);
      } else if (!st.isDirectory()) {
        throw new OcistackError(`layer ${this.layer}: entry "${name}" needs /${sub} to be a directory, but it is a file`, {
          code: 'ROOTFS_BAD_ENTRY',
          hint: 'the layer puts a file inside something that is not a directory; rebuild the image',
        });
      } else this.copyUp(sub);
      this.written.add(sub);
      this.ownDirs.add(sub);
    }
  }

  /**
   * A new, empty directory in `dest` (its parent is there). Diff form: a
   * new directory where a lower has one must not merge with it (what was
   * there was replaced in this layer), so it is opaque.
   */
  private makeOwnDir(rel: string, mode: number): void {
    this.pendingWhiteouts.delete(rel);
    fs.mkdirSync(this.abs(rel), mode);
    this.ownDirs.add(rel);
    if (this.ctx.diff?.lowers.hasDir(rel)) this.opaqueDirs.add(rel);
  }

  /** Diff form: put the lowers' directory `rel` (and its parents) into `dest`, with their metadata. */
  private copyUp(rel: string): void {
    const s = this.seen(rel);
    if (!s || s.own || !s.st.isDirectory()) return;
    this.copyUp(this.parentOf(rel));
    this.touch(this.parentOf(rel));
    fs.mkdirSync(this.abs(rel), 0o700);
    this.ownDirs.add(rel);
    this.copyMeta(rel, s.st, s.host);
  }

  /** Diff form: a lower's file or symlink `rel` copied into `dest` with its metadata (not as written by this layer). */
  private copyUpFile(rel: string, s: Seen): void {
    const parent = this.parentOf(rel);
    this.copyUp(parent);
    this.touch(parent);
    const to = this.abs(rel);
    if (s.st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(s.host), to);
    else if (s.st.isFile()) fs.copyFileSync(s.host, to, fs.constants.COPYFILE_EXCL);
    else {
      // A FIFO or device node: linked across layers (it has no data; its link count is all that differs).
      fs.linkSync(s.host, to);
      return;
    }
    if (this.ctx.privileged) {
      try {
        fs.lchownSync(to, s.st.uid, s.st.gid);
      } catch (e) {
        if (errno(e) !== 'EPERM' && errno(e) !== 'EINVAL') throw e;
      }
    }
    if (!s.st.isSymbolicLink()) fs.chmodSync(to, s.st.mode & 0o7777);
    const attrs = readXattrsOf([s.host])?.get(s.host) ?? {};
    const kept = Object.entries(attrs).filter(([name]) => !isOverlayXattr(name) && name !== 'security.selinux');
    if (kept.length) this.xattrs(rel, Object.fromEntries(kept));
    fs.lutimesSync(to, s.st.atimeMs / 1000, s.st.mtimeMs / 1000);
  }

  /** Give `dest`'s directory `rel` a lower directory's owner and mode now, its times and xattrs in finish(). */
  private copyMeta(rel: string, st: fs.Stats, host: string): void {
    if (this.ctx.privileged) {
      try {
        fs.lchownSync(this.abs(rel), st.uid, st.gid);
      } catch (e) {
        if (errno(e) !== 'EPERM' && errno(e) !== 'EINVAL') throw e;
        this.ctx.warnings.add('ROOTFS_OWNER_SKIPPED', '/' + rel, `cannot set owner ${st.uid}:${st.gid} on /${rel} (${errno(e)}): the id is not mapped`);
      }
    }
    const mode = st.mode & 0o7777;
    if (!this.ctx.privileged && (mode & 0o700) !== 0o700) {
      this.restoreModes.set(rel, mode);
      fs.chmodSync(this.abs(rel), mode | 0o700);
    } else fs.chmodSync(this.abs(rel), mode);
    this.touched.set(rel, { atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 });
    this.copiedUp.set(rel, host);
  }

  /** Remember a directory's times before its children change (and, unprivileged, make it writable). */
  private touch(dirRel: string): void {
    if (this.touched.has(dirRel)) return;
    this.copyUp(dirRel);
    if (this.touched.has(dirRel)) return;
    const st = this.lstat(dirRel);
    if (!st?.isDirectory()) return;
    this.touched.set(dirRel, { atime: st.atimeMs / 1000, mtime: st.mtimeMs / 1000 });
    if (!this.ctx.privileged && (st.mode & 0o700) !== 0o700) {
      if (!this.restoreModes.has(dirRel)) this.restoreModes.set(dirRel, st.mode & 0o7777);
      fs.chmodSync(this.abs(dirRel), (st.mode & 0o7777) | 0o700);
    }
  }

  private parentOf(rel: string): string {
    const i = rel.lastIndexOf('/');
    return i < 0 ? '' : rel.slice(0, i);
  }

  /** Remove whatever `dest` has at `rel` (a directory with everything in it), never following a link. */
  private removeOwn(rel: string): void {
    this.pendingWhiteouts.delete(rel);
    const st = this.own(rel);
    if (!st) return;
    this.touch(this.parentOf(rel));
    if (st.isDirectory()) {
      // Files below it may still be in the writer threads' hands.
      this.settle();
      if (!this.ctx.privileged) this.makeTreeWritable(rel);
      fs.rmSync(this.abs(rel), { recursive: true, force: true });
      for (const p of this.ownDirs) if (p === rel || p.startsWith(`${rel}/`)) this.ownDirs.delete(p);
      this.forgetBelow(rel);
    } else fs.unlinkSync(this.abs(rel));
  }

  /**
   * What was recorded for a removed directory of `dest` and everything below it. Also in flattened
   * form: finish() would otherwise set times and modes by a path whose parent may now be a symlink
   * (a directory replaced by a link in the same layer), i.e. outside the root.
   */
  private forgetBelow(rel: string): void {
    const below = (p: string): boolean => p === rel || rel === '' || p.startsWith(`${rel}/`);
    for (const set of [this.pendingWhiteouts, this.opaqueDirs]) for (const p of set) if (below(p)) set.delete(p);
    for (const map of [this.copiedUp, this.touched, this.restoreModes, this.dirHeaders, this.headerXattrs] as Map<string, unknown>[]) for (const p of map.keys()) if (below(p)) map.delete(p);
  }

  /** Make `rel` absent from what the layer sees: removed from `dest`, and in diff form hidden from the lowers by a whiteout. */
  private remove(rel: string): void {
    if (!this.lstat(rel)) return;
    this.removeOwn(rel);
    if (this.ctx.diff && this.lstat(rel)) {
      this.touch(this.parentOf(rel));
      this.pendingWhiteouts.add(rel);
    }
  }

  /** Unprivileged: a directory without owner write/exec cannot be emptied; open them up before removing. */
  private makeTreeWritable(rel: string): void {
    const st = this.lstat(rel);
    if (!st?.isDirectory()) return;
    if ((st.mode & 0o700) !== 0o700) fs.chmodSync(this.abs(rel), (st.mode & 0o7777) | 0o700);
    for (const name of fs.readdirSync(this.abs(rel))) this.makeTreeWritable(rel ? `${rel}/${name}` : name);
  }

  // --- metadata ------------------------------------------------------------

  /** Set the entry's owner on `rel` (or on `fd`, open on it). */
  private chown(rel: string, entry: ReadEntry, fd?: number): void {
    const uid = entry.uid ?? 0;
    const gid = entry.gid ?? 0;
    if (!this.ctx.privileged) {
      if (uid !== this.uid || gid !== this.gid) {
        this.ctx.warnings.add('ROOTFS_OWNER_SKIPPED', '/' + rel, `not running as root: files keep the current user as owner (first: /${rel} wants ${uid}:${gid})`);
      }
      return;
    }
    try {
      if (fd === undefined) fs.lchownSync(this.abs(rel), uid, gid);
      else fs.fchownSync(fd, uid, gid);
    } catch (e) {
      // EINVAL: an id outside the user namespace's mapping.
      if (errno(e) !== 'EPERM' && errno(e) !== 'EINVAL') throw e;
      this.ctx.warnings.add('ROOTFS_OWNER_SKIPPED', '/' + rel, `cannot set owner ${uid}:${gid} on /${rel} (${errno(e)}): the id is not mapped`);
    }
  }

  private xattrs(rel: string, xattrs: Record<string, string> | undefined): void {
    for (const [name, value] of Object.entries(xattrs ?? {})) {
      if (this.ctx.diff && isOverlayXattr(name)) {
        this.ctx.warnings.add('ROOTFS_XATTR_SKIPPED', '/' + rel, `extended attribute ${name} of /${rel} not set: overlayfs would act on it`);
        continue;
      }
      const r = setXattr(this.abs(rel), name, value);
      if (!r.ok) {
        const why = r.missing ? 'setfattr is not installed (Debian: apt-get install attr)' : r.reason;
        this.ctx.warnings.add('ROOTFS_XATTR_SKIPPED', '/' + rel, `extended attribute ${name} of /${rel} not set: ${why}`);
      }
    }
  }

  private times(entry: ReadEntry): Times {
    const mtime = seconds(entry.mtime) ?? 0;
    return { mtime, atime: seconds(entry.atime) ?? mtime };
  }

  private setTimes(rel: string, t: Times): void {
    fs.lutimesSync(this.abs(rel), t.atime, t.mtime);
  }

  private mode(entry: ReadEntry): number {
    return (entry.mode ?? 0o644) & 0o7777;
  }

  // --- entries -------------------------------------------------------------

  /** Apply one entry (see read-layer.ts for `fail`). */
  apply(entry: ReadEntry, xattrs: Record<string, string> | undefined, fail: (e: unknown) => void): void {
    const parts = this.clean(entry.path, 'entry');
    const base = parts[parts.length - 1] ?? '';
    if (base === '.wh..wh..opq') return this.markOpaque(parts.slice(0, -1));
    if (base.startsWith('.wh.')) {
      // `.wh..wh.*` other than opq is aufs bookkeeping (hard-link dirs, plinks): never part of the image.
      if (base.startsWith('.wh..wh.')) return;
      return this.whiteout(parts.slice(0, -1), base.slice(4), entry.path);
    }
    if (parts.length === 0) {
      if (entry.type !== 'Directory') throw this.unsafe('entry', entry.path, 'names the root but is not a directory');
      return this.directory('', entry, xattrs);
    }
    const parent = this.resolve(parts.slice(0, -1), true);
    this.ensureDir(parent, entry.path);
    const rel = parent ? `${parent}/${base}` : base;
    switch (entry.type) {
      case 'Directory':
        return this.directory(rel, entry, xattrs);
      case 'File':
      case 'OldFile':
      case 'ContiguousFile':
        return this.file(rel, entry, xattrs, fail);
      case 'SymbolicLink':
        return this.symlink(rel, entry, xattrs);
      case 'Link':
        return this.hardlink(rel, entry);
      case 'CharacterDevice':
      case 'BlockDevice':
        return this.device(rel, entry, xattrs);
      case 'FIFO':
        return this.fifo(rel, entry, xattrs);
      default:
        this.ctx.warnings.add('ROOTFS_ENTRY_SKIPPED', '/' + rel, `tar entry /${rel} of type ${entry.type} skipped: not supported in a rootfs`);
    }
  }

  /** Make room for a new entry at `rel` (in diff form the new entry itself hides the lowers'). */
  private replace(rel: string): void {
    if (this.ctx.diff) this.removeOwn(rel);
    else this.remove(rel);
    this.touch(this.parentOf(rel));
    this.written.add(rel);
  }

  private directory(rel: string, entry: ReadEntry, xattrs: Record<string, string> | undefined): void {
    const st = this.lstat(rel);
    if (!st?.isDirectory()) {
      this.replace(rel);
      this.makeOwnDir(rel, 0o700);
    } else this.copyUp(rel);
    this.written.add(rel);
    if (this.ctx.diff) this.headerXattrs.set(rel, new Set(Object.keys(xattrs ?? {})));
    this.chown(rel, entry);
    const mode = this.mode(entry);
    if (!this.ctx.privileged && (mode & 0o700) !== 0o700) {
      // Keep it writable for the rest of the layer; its mode is set in finish().
      this.restoreModes.set(rel, mode);
      fs.chmodSync(this.abs(rel), mode | 0o700);
    } else {
      this.restoreModes.delete(rel);
      fs.chmodSync(this.abs(rel), mode);
    }
    this.xattrs(rel, xattrs);
    this.dirHeaders.set(rel, this.times(entry));
  }

  private file(rel: string, entry: ReadEntry, xattrs: Record<string, string> | undefined, fail: (e: unknown) => void): void {
    this.replace(rel);
    const size = entry.size ?? 0;
    if (this.threads > 0 && size <= THREADED_MAX_FILE && !(xattrs && Object.keys(xattrs).length) && ++this.smallFiles > THREADED_AFTER) {
      return this.threadedFile(rel, entry, size, fail);
    }
    const fd = fs.openSync(this.abs(rel), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    this.openFd = fd;
    entry.on('data', (chunk: Buffer) => {
      try {
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
      } catch (e) {
        fail(e);
      }
    });
    entry.on('end', () => {
      try {
        // Owner, mode (and times, when there are no xattrs to set by path between them) on the open fd:
        // the same inode as the path names (created O_EXCL|O_NOFOLLOW), without a path walk per call.
        this.chown(rel, entry, fd);
        fs.fchmodSync(fd, this.mode(entry));
        const hasXattrs = !!xattrs && Object.keys(xattrs).length > 0;
        if (!hasXattrs) {
          const t = this.times(entry);
          fs.futimesSync(fd, t.atime, t.mtime);
        }
        this.openFd = undefined;
        fs.closeSync(fd);
        if (hasXattrs) {
          this.xattrs(rel, xattrs);
          this.setTimes(rel, this.times(entry));
        }
      } catch (e) {
        fail(e);
      }
    });
  }

  /**
   * A small file without xattrs, created by a writer thread: its parents are
   * made and what was at `rel` is removed (replace()), so the thread only
   * creates it, O_EXCL|O_NOFOLLOW as file() does, with the same owner, mode
   * and times. Its bytes are copied into a buffer of their own (moved to the
   * thread, not cloned with the chunk's larger buffer).
   */
  private threadedFile(rel: string, entry: ReadEntry, size: number, fail: (e: unknown) => void): void {
    const data = new Uint8Array(new ArrayBuffer(size));
    let got = 0;
    entry.on('data', (chunk: Buffer) => {
      if (got + chunk.length > size) return fail(new Error(`tar entry ${entry.path} has more bytes than its header says`));
      data.set(chunk, got);
      got += chunk.length;
    });
    entry.on('end', () => {
      try {
        if (!this.ctx.privileged) this.chown(rel, entry); // unprivileged: only the warning, no call
        const t = this.times(entry);
        (this.writers ??= new FileWriters()).write({ path: this.abs(rel), rel, data: got === size ? data : data.subarray(0, got), chown: this.ctx.privileged, uid: entry.uid ?? 0, gid: entry.gid ?? 0, mode: this.mode(entry), atime: t.atime, mtime: t.mtime });
      } catch (e) {
        fail(e);
      }
    });
  }

  /** Wait for the writer threads' files; their owner warnings become this layer's, their first error is thrown. */
  private settle(): void {
    const problems = this.writers?.drain() ?? [];
    let error: NodeJS.ErrnoException | undefined;
    for (const p of problems) {
      if (p.kind === 'owner') this.ctx.warnings.add('ROOTFS_OWNER_SKIPPED', '/' + p.rel, `cannot set owner ${p.uid}:${p.gid} on /${p.rel} (${p.code}): the id is not mapped`);
      else error ??= Object.assign(new Error(`${p.message} (writing /${p.rel})`), { code: p.code });
    }
    if (error) throw error;
  }

  private symlink(rel: string, entry: ReadEntry, xattrs: Record<string, string> | undefined): void {
    this.replace(rel);
    // The target is stored as is: it is only ever resolved by the scoped resolver here, or inside the container.
    fs.symlinkSync(entry.linkpath ?? '', this.abs(rel));
    this.chown(rel, entry);
    this.xattrs(rel, xattrs);
    this.setTimes(rel, this.times(entry));
  }

  private hardlink(rel: string, entry: ReadEntry): void {
    const linkname = entry.linkpath ?? '';
    const targetParts = this.clean(linkname, 'hard link target');
    if (targetParts.length === 0) throw this.unsafe('hard link', entry.path, 'points at the root directory');
    const target = this.resolve(targetParts, false);
    const seen = this.seen(target);
    const st = seen?.st;
    if (!st || st.isDirectory()) {
      throw new OcistackError(`layer ${this.layer}: hard link "${entry.path}" points at "${linkname}", which ${st ? 'is a directory' : 'does not exist'}`, {
        code: 'ROOTFS_BAD_LINK',
        hint: 'a hard link must name a file earlier in the same image; rebuild the layer',
      });
    }
    if (target === rel) return;
    // Diff form, a lower's file: copied up first, so the two names share an inode of this layer, as in a
    // flattened rootfs, and the lower snapshot (shared with other chains) keeps its link count.
    if (!seen!.own) this.copyUpFile(target, seen!);
    this.replace(rel);
    fs.linkSync(this.abs(target), this.abs(rel));
  }

  private device(rel: string, entry: ReadEntry, xattrs: Record<string, string> | undefined): void {
    if (!this.ctx.privileged) {
      this.ctx.warnings.add('ROOTFS_DEVICE_SKIPPED', '/' + rel, `not running as root: device node /${rel} skipped (the runtime provides /dev)`);
      return;
    }
    const h = entry.header as unknown as { devmaj?: number; devmin?: number };
    if (this.ctx.diff && entry.type === 'CharacterDevice' && !h.devmaj && !h.devmin) {
      this.ctx.warnings.add('ROOTFS_DEVICE_SKIPPED', '/' + rel, `device node /${rel} (character 0/0) skipped: in overlay form it would be a whiteout`);
      return;
    }
    this.replace(rel);
    const r = makeDevice(this.abs(rel), entry.type === 'BlockDevice' ? 'b' : 'c', h.devmaj ?? 0, h.devmin ?? 0);
    if (!r.ok) {
      this.written.delete(rel);
      this.ctx.warnings.add('ROOTFS_DEVICE_SKIPPED', '/' + rel, `device node /${rel} skipped: ${r.reason}`);
      return;
    }
    this.special(rel, entry, xattrs);
  }

  private fifo(rel: string, entry: ReadEntry, xattrs: Record<string, string> | undefined): void {
    this.replace(rel);
    const r = makeFifo(this.abs(rel));
    if (!r.ok) {
      this.written.delete(rel);
      this.ctx.warnings.add('ROOTFS_ENTRY_SKIPPED', '/' + rel, `FIFO /${rel} skipped: ${r.reason}`);
      return;
    }
    this.special(rel, entry, xattrs);
  }

  private special(rel: string, entry: ReadEntry, xattrs: Record<string, string> | undefined): void {
    this.chown(rel, entry);
    fs.chmodSync(this.abs(rel), this.mode(entry));
    this.xattrs(rel, xattrs);
    this.setTimes(rel, this.times(entry));
  }

  private whiteout(parentParts: string[], name: string, raw: string): void {
    if (name === '' || name === '.' || name === '..' || name.includes('/')) throw this.unsafe('whiteout', raw, 'names no file');
    const parent = this.resolve(parentParts, true);
    if (!this.lstat(parent)?.isDirectory()) return;
    const rel = parent ? `${parent}/${name}` : name;
    if (this.written.has(rel)) return;
    this.remove(rel);
  }

  private markOpaque(dirParts: string[]): void {
    const dir = this.resolve(dirParts, true);
    if (!this.lstat(dir)?.isDirectory()) return;
    if (this.ctx.diff) {
      // The xattr hides the lowers' entries; what this layer put in `dest` without writing it (copied-up dirs) goes below.
      this.touch(dir);
      this.opaqueDirs.add(dir);
      for (const p of this.pendingWhiteouts) if (dir === '' || p.startsWith(`${dir}/`)) this.pendingWhiteouts.delete(p);
    }
    this.hideLower(dir);
  }

  /** Remove everything below `dir` this layer did not write (diff form: from `dest`; the opaque xattr hides the rest). */
  private hideLower(dir: string): void {
    this.settle(); // it lists `dest`: every file handed out must be there
    for (const name of fs.readdirSync(this.abs(dir))) {
      const rel = dir ? `${dir}/${name}` : name;
      if (!this.written.has(rel)) (this.ctx.diff ? this.removeOwn(rel) : this.remove(rel));
      else if (this.own(rel)?.isDirectory()) this.hideLower(rel);
    }
  }

  /** After the last entry (also after a failure): close what is open, put modes and directory times in place. */
  finish(ok: boolean): void {
    if (this.openFd !== undefined) {
      fs.closeSync(this.openFd);
      this.openFd = undefined;
    }
    if (!ok) {
      // Nothing may still be writing into `dest` when the caller removes it; the layer failed already.
      try {
        this.settle();
      } catch {
        // the first failure is the one reported
      }
      return;
    }
    this.settle();
    if (this.ctx.diff) this.finishDiff(this.ctx.diff);
    for (const [rel, mode] of this.restoreModes) {
      if (this.own(rel)?.isDirectory()) fs.chmodSync(this.abs(rel), mode);
    }
    const times = new Map([...this.touched, ...this.dirHeaders]);
    // (Diff form: whiteouts made above changed their parents' times; those are set here, after them.)
    for (const [rel, t] of times) {
      try {
        this.setTimes(rel, t);
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e;
      }
    }
  }

  /** Diff form, after the last entry: whiteouts, opaque xattrs, the copied-up lowers' xattrs, each in one batch. */
  private finishDiff(diff: DiffTarget): void {
    const fail = (what: string, reason: string | undefined): OcistackError =>
      new OcistackError(`layer ${this.layer}: could not make ${what} in the snapshot: ${reason ?? 'unknown error'}`, {
        code: 'ROOTFS_DIFF',
        hint: 'overlay snapshots need mknod of 0/0 whiteouts and the overlay xattrs (Linux 5.8+; attr installed); remove the cache dir\'s snapshots/ and retry',
      });
    const whiteouts = [...this.pendingWhiteouts].sort().map((rel) => this.abs(rel));
    const w = makeWhiteouts(whiteouts);
    if (!w.ok) throw fail('whiteouts', w.reason);
    for (const rel of this.opaqueDirs) {
      const r = setXattr(this.abs(rel), diff.opaqueXattr, 'y');
      if (!r.ok) throw fail(`the opaque directory /${rel}`, r.missing ? 'setfattr is not installed (Debian: apt-get install attr)' : r.reason);
    }
    const from = [...this.copiedUp].filter(([rel]) => this.own(rel)?.isDirectory());
    if (from.length === 0) return;
    const attrs = readXattrsOf(from.map(([, host]) => host));
    if (!attrs) return; // no getfattr: the lowers' directory xattrs (rare) are not copied; setXattr warns about the missing tool elsewhere
    for (const [rel, host] of from) {
      const set = this.headerXattrs.get(rel);
      const kept = Object.entries(attrs.get(host) ?? {}).filter(([name]) => !isOverlayXattr(name) && name !== 'security.selinux' && !set?.has(name));
      if (kept.length) this.xattrs(rel, Object.fromEntries(kept));
    }
  }
}

/** Overlayfs' own xattrs (`trusted.overlay.*`, `user.overlay.*`): what a lower dir carries of them changes what overlay shows. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}
