/**
 * Where COPY reads from: the build context (with .dockerignore applied) or
 * the file system of another stage or image (`--from`). Both are seen
 * through one small interface with root-relative paths ('' = root), so the
 * copy logic does not care which it is.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import * as path from 'node:path';
import type { BuildContext } from '../context/context.js';
import { FsContextSource, type ContextStat, type FileIdentity } from '../context/source.js';
import type { ImageFs, ImageNode } from '../layer/image-fs.js';
import type { FileMeta } from '../layer/types.js';

export interface SourceStat extends FileMeta {
  type: 'file' | 'dir' | 'symlink' | 'other';
  /** Same inode key + nlink > 1 (or a shared image inode) = hard links of one file. */
  inode: string;
  nlink: number;
  /** A context file's lstat identity (context/source.ts), for the stat cache. */
  identity?: FileIdentity;
}

export interface SourceFs {
  readonly kind: 'context' | 'image';
  /** Entry at `rel` (last symlink not followed); undefined when missing or excluded. */
  lstat(rel: string): Promise<SourceStat | undefined>;
  /** Resolve symlinks with the source root as `/`. */
  resolve(rel: string, followFinal: boolean): Promise<string>;
  /** Names in a directory, byte order (excluded entries included: callers filter). */
  readdir(rel: string): Promise<string[]>;
  /** Every entry below a directory (not the directory), parents first. */
  walk(rel: string): AsyncGenerator<{ rel: string; stat: SourceStat }>;
  /** Set before content is read: lets image sources extract what is needed in one pass. */
  prepare(files: { rel: string; stat: SourceStat }[], tmpDir: string): Promise<void>;
  /** A function producing the bytes of a file, for a LayerEntry. */
  content(rel: string, stat: SourceStat): () => NodeJS.ReadableStream | AsyncIterable<Uint8Array>;
  /** Throws when a file cannot be read. */
  checkReadable(rel: string): Promise<void>;
}

export class ContextSourceFs implements SourceFs {
  readonly kind = 'context' as const;
  constructor(readonly context: BuildContext) {}

  async lstat(rel: string): Promise<SourceStat | undefined> {
    const st = await this.context.lstat(rel);
    if (!st) return undefined;
    const out = sourceStat(st);
    if (out.type === 'symlink') out.linkTarget = await this.context.source.readlink(rel);
    return out;
  }

  resolve(rel: string, followFinal: boolean): Promise<string> {
    return this.context.resolve(rel, followFinal);
  }

  readdir(rel: string): Promise<string[]> {
    return this.context.readdir(rel);
  }

  async *walk(rel: string): AsyncGenerator<{ rel: string; stat: SourceStat }> {
    for await (const e of this.context.walk(rel)) {
      const stat = sourceStat(e.stat);
      if (stat.type === 'symlink') stat.linkTarget = await this.context.source.readlink(e.rel);
      yield { rel: e.rel, stat };
    }
  }

  /** Whether {@link walkSync} can be used (a local directory context). */
  get canWalkSync(): boolean {
    return this.context.syncSource;
  }

  /** {@link walk} without promises (BuildContext.walkSync): for a stat walk over thousands of files. */
  *walkSync(rel: string): Generator<{ rel: string; stat: SourceStat }> {
    const readlink = this.context.source.readlinkSync!.bind(this.context.source);
    for (const e of this.context.walkSync(rel)) {
      const stat = sourceStat(e.stat);
      if (stat.type === 'symlink') stat.linkTarget = readlink(e.rel);
      yield { rel: e.rel, stat };
    }
  }

  async prepare(): Promise<void> {}

  content(rel: string, stat: SourceStat): () => NodeJS.ReadableStream | AsyncIterable<Uint8Array> {
    const source = this.context.source;
    if (stat.size <= SYNC_READ_MAX && localPath(this.context, '', 'readHead') !== undefined) {
      // Read the size+1 bytes below (size checks) with plain syscalls on
      // this thread: a few µs from the page cache (the cache key has just
      // read every file of a cold COPY), where three thread-pool round trips
      // through a FileHandle cost ~100 µs of CPU each file (8,500 files:
      // ~0.7 s). The deflate keeps running in the pool meanwhile.
      // The path is made when the file is read, not held per entry until then (85,000 strings at 10x).
      const size = stat.size;
      return () => oneChunkSync(() => readHeadSync(localPath(this.context, rel, 'readHead')!, size + 1));
    }
    if (source.readHead && stat.size <= SMALL_FILE) {
      // One read of size+1 bytes: a file that grew since it was stat'ed
      // yields too many bytes, one that shrank too few, and the layer writer
      // rejects both, as it does for streamed files.
      const readHead = source.readHead.bind(source);
      return () => oneChunk(readHead(rel, stat.size + 1));
    }
    return () => source.open(rel);
  }

  checkReadable(rel: string): Promise<void> {
    const local = localPath(this.context, rel, 'checkReadable');
    if (local === undefined) return this.context.source.checkReadable(rel);
    // An open and a close, synchronously for the same reason as content().
    try {
      closeSync(openSync(local, 'r'));
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

/** A context entry as COPY sees it; the lstat identity rides along for the stat cache. */
function sourceStat(st: ContextStat): SourceStat {
  const type = st.type === 'file' || st.type === 'dir' || st.type === 'symlink' ? st.type : 'other';
  const out: SourceStat = { type, mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, mtime: st.mtime, inode: st.inode, nlink: st.nlink };
  if (st.identity) out.identity = st.identity;
  return out;
}

/** Context files up to this size are read synchronously (see ContextSourceFs.content): small enough not to hold the JS thread long. */
const SYNC_READ_MAX = 256 * 1024;

/**
 * The file's path on disk when the context is a local directory whose
 * `method` is FsContextSource's own (what the sync code here does too; a
 * subclass that reads otherwise keeps its reads).
 */
function localPath(context: BuildContext, rel: string, method: 'readHead' | 'checkReadable'): string | undefined {
  const source = context.source;
  if (!(source instanceof FsContextSource) || source[method] !== FsContextSource.prototype[method]) return undefined;
  return rel === '' ? source.root : path.join(source.root, rel);
}

/** Up to `limit` bytes from the start of a file (fewer at its end). */
function readHeadSync(file: string, limit: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(limit);
    let got = 0;
    while (got < limit) {
      const n = readSync(fd, buf, got, limit - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === limit ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

async function* oneChunkSync(read: () => Buffer): AsyncGenerator<Buffer> {
  yield read();
}

/** Context files up to this size are read in one piece instead of streamed (fewer syscalls and buffers). */
const SMALL_FILE = 256 * 1024;

async function* oneChunk(data: Promise<Buffer>): AsyncGenerator<Buffer> {
  yield await data;
}

function imageStat(n: ImageNode): SourceStat {
  const s: SourceStat = { type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, mtime: n.mtime, inode: n.inode, nlink: 2 };
  if (n.linkTarget !== undefined) s.linkTarget = n.linkTarget;
  if (n.xattrs) s.xattrs = n.xattrs;
  return s;
}

export class ImageSourceFs implements SourceFs {
  readonly kind = 'image' as const;
  private files = new Map<string, string>();
  constructor(readonly fs: ImageFs) {}

  private node(rel: string): ImageNode | undefined {
    return this.fs.lstat('/' + rel);
  }

  async lstat(rel: string): Promise<SourceStat | undefined> {
    const n = this.node(rel);
    return n ? imageStat(n) : undefined;
  }

  async resolve(rel: string, followFinal: boolean): Promise<string> {
    return this.fs.resolve('/' + rel, followFinal).slice(1);
  }

  async readdir(rel: string): Promise<string[]> {
    return this.fs.readdir('/' + rel);
  }

  async *walk(rel: string): AsyncGenerator<{ rel: string; stat: SourceStat }> {
    const dir = this.node(rel);
    if (!dir || dir.type !== 'dir') return;
    const names = [...dir.children!.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const child = dir.children!.get(name)!;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      yield { rel: childRel, stat: imageStat(child) };
      if (child.type === 'dir') yield* this.walk(childRel);
    }
  }

  async prepare(files: { rel: string; stat: SourceStat }[], tmpDir: string): Promise<void> {
    const nodes = files.map((f) => this.node(f.rel)).filter((n): n is ImageNode => n?.type === 'file');
    this.files = await this.fs.extract(nodes, tmpDir);
  }

  content(_rel: string, stat: SourceStat): () => NodeJS.ReadableStream {
    return () => {
      const file = this.files.get(stat.inode);
      if (!file) throw new Error(`internal: ${_rel} was not extracted`);
      return createReadStream(file);
    };
  }

  async checkReadable(): Promise<void> {}
}

/** Whether a source word has wildcard characters (Go filepath.Match syntax). */
export function hasWildcard(s: string): boolean {
  return /[*?[]/.test(s);
}

/**
 * Compile one path segment in Go `filepath.Match` syntax (`*`, `?`, `[a-z]`,
 * `[^a]`, `\` escapes) to a RegExp. `*` and `?` never match `/`.
 */
export function compileSegment(seg: string): RegExp {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < seg.length) re += '\\' + seg[++i]!;
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = seg.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += '[' + cls.replace(/\\(?!.)/g, '\\\\') + ']';
      i = end;
    } else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$');
}
