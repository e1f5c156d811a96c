/**
 * The one seam through which the build reads its context: a directory on
 * disk today (node:fs), something else later (a tarball, a git checkout, a
 * remote session). Paths are context-relative, slash-separated, without a
 * leading slash; `''` is the context root. Nothing here follows a symlink out
 * of the context: `lstat` never follows, and `resolve` walks symlinks with the
 * context root as `/`.
 */
import { createReadStream, lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import { cleanPath } from './ignore.js';

export type ContextEntryType = 'file' | 'dir' | 'symlink' | 'socket' | 'device' | 'fifo';

/** What the build needs to know about one context entry. */
export interface ContextStat {
  type: ContextEntryType;
  /** Permission bits plus setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since epoch (fractions dropped, as tar stores them). */
  mtime: number;
  /** Hard-link identity: same `inode` key and nlink > 1 means one file. */
  inode: string;
  nlink: number;
  /**
   * A regular file's exact lstat identity, when the source is a local file
   * system: lets the stat cache (content-digests.ts) confirm it without a
   * second lstat.
   */
  identity?: FileIdentity;
}

/**
 * What identifies one version of a regular file on disk (the stat cache's
 * key), and when it was taken: `statMs` is read BEFORE the lstat, so a
 * timestamp newer than `statMs - RACY_MARGIN_MS` is known to be too recent
 * to trust. One string, not six fields: at 85,000 files every object and
 * string per file shows in the peak RSS and the GC time.
 */
export interface FileIdentity {
  /** {@link identityKey} of the lstat. */
  key: string;
  /** Date.now() taken before the lstat. */
  statMs: number;
}

/** `size:mtimeNs:ctimeNs:ino:dev:mode` (full st_mode) of a bigint lstat: equal keys, same version of the file. */
export function identityKey(st: BigIntStats): string {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}:${st.mode}`;
}

export interface ContextSource {
  /** Human-readable location, for messages. */
  readonly description: string;
  /** Stat without following a final symlink; undefined when the path does not exist. */
  lstat(rel: string): Promise<ContextStat | undefined>;
  /** Entry names of a directory, sorted by code unit. */
  readdir(rel: string): Promise<string[]>;
  readlink(rel: string): Promise<string>;
  /** The bytes of a regular file. */
  open(rel: string): NodeJS.ReadableStream;
  /**
   * Optional fast path for small files: the first `limit` bytes (fewer when
   * the file is shorter) in one read, without a stream's per-read buffers.
   */
  readHead?(rel: string, limit: number): Promise<Buffer>;
  /** Throws if the file cannot be read (permissions), so errors surface before a layer is written. */
  checkReadable(rel: string): Promise<void>;
  /**
   * Optional synchronous twins of lstat/readdir/readlink, for a source whose
   * calls are cheap system calls: a stat walk of thousands of files costs
   * 2-4x more through the promise API's thread-pool round trip than the
   * calls themselves (docs/performance.md). All three or none.
   */
  lstatSync?(rel: string, statMs?: number): ContextStat | undefined;
  readdirSync?(rel: string): string[];
  readlinkSync?(rel: string): string;
}

/**
 * Normalise a context path: slash-separated, no leading `/`, no `.`/`..`
 * segments. Returns undefined when the path climbs above the context root.
 */
export function normalizeContextPath(p: string): string | undefined {
  const c = cleanPath(p.replace(/\\/g, '/'));
  if (c === '..' || c.startsWith('../')) return undefined;
  if (c === '.' || c === '/') return '';
  return c.startsWith('/') ? c.slice(1) : c;
}

/** A `.`/`..` segment, an empty one, or a leading/trailing slash: what path.join would normalise. */
const UNCLEAN = /(?:^|\/)\.{1,2}(?:\/|$)|\/\/|^\/|\/$/;

/** A context directory on the local file system. */
export class FsContextSource implements ContextSource {
  readonly root: string;
  readonly description: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.description = this.root;
  }

  private abs(rel: string): string {
    if (rel === '') return this.root;
    // A clean path (what walks and normalizeContextPath make) is joined by hand: path.join costs as much as an lstat hit.
    return UNCLEAN.test(rel) ? path.join(this.root, ...rel.split('/')) : `${this.root}/${rel}`;
  }

  async lstat(rel: string): Promise<ContextStat | undefined> {
    const statMs = Date.now();
    let st;
    try {
      st = await fsp.lstat(this.abs(rel), { bigint: true });
    } catch (e) {
      if (missing(e)) return undefined;
      throw e;
    }
    return contextStat(st, statMs);
  }

  /** `statMs`: a Date.now() the caller took before this call (one per directory of a walk). */
  lstatSync(rel: string, statMs = Date.now()): ContextStat | undefined {
    let st;
    try {
      st = lstatSync(this.abs(rel), { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      if (missing(e)) return undefined;
      throw e;
    }
    return st && contextStat(st, statMs);
  }

  async readdir(rel: string): Promise<string[]> {
    const names = await fsp.readdir(this.abs(rel));
    return names.sort(compareCodeUnits);
  }

  readdirSync(rel: string): string[] {
    return readdirSync(this.abs(rel)).sort(compareCodeUnits);
  }

  readlinkSync(rel: string): string {
    return readlinkSync(this.abs(rel));
  }

  async readlink(rel: string): Promise<string> {
    return fsp.readlink(this.abs(rel));
  }

  open(rel: string): NodeJS.ReadableStream {
    return createReadStream(this.abs(rel));
  }

  async readHead(rel: string, limit: number): Promise<Buffer> {
    const fh = await fsp.open(this.abs(rel), 'r');
    try {
      const buf = Buffer.allocUnsafe(limit);
      let got = 0;
      // A regular file returns less than asked only at its end: one read, usually.
      while (got < limit) {
        const want = limit - got;
        const { bytesRead } = await fh.read(buf, got, want, got);
        got += bytesRead;
        if (bytesRead < want) break;
      }
      return got === limit ? buf : buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }

  async checkReadable(rel: string): Promise<void> {
    const fh = await fsp.open(this.abs(rel), 'r');
    await fh.close();
  }
}

function missing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function contextStat(st: BigIntStats, statMs: number): ContextStat {
  const type: ContextEntryType = st.isFile()
    ? 'file'
    : st.isDirectory()
      ? 'dir'
      : st.isSymbolicLink()
        ? 'symlink'
        : st.isSocket()
          ? 'socket'
          : st.isFIFO()
            ? 'fifo'
            : 'device';
  const out: ContextStat = {
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === 'file' ? Number(st.size) : 0,
    mtime: Number(st.mtimeMs / 1000n),
    inode: `${st.dev}:${st.ino}`,
    nlink: Number(st.nlink),
  };
  // Only regular files have content digests, so only they need the stat cache's key.
  if (type === 'file') out.identity = { key: identityKey(st), statMs };
  return out;
}

/** Surrogate halves: where UTF-16 code unit order and UTF-8 byte order part. */
const SURROGATE = /[\ud800-\udfff]/;

/**
 * Byte-order comparison (Go's sort of strings), not locale order. UTF-8 byte
 * order is code point order, which UTF-16 code unit order (`<`) equals
 * unless a surrogate pair is involved: only then are bytes compared.
 */
export function compareCodeUnits(a: string, b: string): number {
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0;
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return Buffer.compare(ba, bb);
}

/** Wrap an fs error on a context path into an OcistackError that names it. */
export function contextReadError(rel: string, e: unknown): OcistackError {
  const code = (e as NodeJS.ErrnoException).code;
  const what = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (e as Error).message;
  return new OcistackError(`cannot read "${rel || '.'}" in the build context: ${what}`, {
    code: 'CONTEXT_READ',
    hint: code === 'EACCES' || code === 'EPERM' ? `make "${rel}" readable, or list it in .dockerignore` : 'check the file exists and is readable',
    cause: e,
  });
}
