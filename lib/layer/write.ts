/**
 * Write a layer: entries -> tar -> sha256 (diffId) -> gzip -> sha256 (digest)
 * -> temp file in the blob store -> atomic commit. One pass; file contents
 * stream through, only entry metadata is held in memory (to sort it), plus
 * a bounded read-ahead of small files and the blocks gzip is working on.
 * gzip runs on all cores in fixed blocks (parallel-gzip.ts), so its bytes do
 * not depend on the machine.
 *
 * Reproducibility: entries are sorted by path (parents first), duplicates
 * collapse to the last one given, the gzip header carries no time, a fixed
 * OS byte and no name, and with `sourceDateEpoch` every mtime is clamped.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { asAbortError, throwIfAborted } from '../abort.js';
import { OcistackError, type SourceLocation } from '../errors.js';
import { MediaType, type Digest } from '../image/types.js';
import { BlobStore, DigestCounter } from '../image/store.js';
import { layerEntryError, normalizeLayerPath, showPath } from './entry-path.js';
import { IndexJsonParts, indexEntryOfHeader, saveLayerIndexJson, type IndexedEntry } from './layer-index.js';
import { ParallelGzip } from './parallel-gzip.js';
import { checkHeader, encodeHeader, END_OF_ARCHIVE, paddingFor, type TarHeader } from './tar-header.js';
import type { LayerEntry, LayerResult } from './types.js';

export interface WriteLayerOptions {
  store: BlobStore;
  /** Clamp every mtime to this (seconds since epoch). */
  sourceDateEpoch?: number;
  /** gzip level (default 6). Part of the output: keep it fixed for reproducible digests. */
  level?: number;
  /** Stop writing (temp file removed, ABORTED error) when aborted. Default: the store's signal. */
  signal?: AbortSignal;
  /** Named by errors about bad entries (the instruction that made them). */
  location?: SourceLocation;
}

/** gzip's OS byte for "unknown": what Go's compress/gzip writes, and the same on every platform. */
export const GZIP_OS_UNKNOWN = 255;

/**
 * Order of paths in a layer: component by component, byte order, so a
 * directory comes right before its contents (`a/`, `a/b`, `a-b`).
 */
export function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    if (pa[i] === pb[i]) continue;
    return Buffer.compare(Buffer.from(pa[i]!), Buffer.from(pb[i]!));
  }
  return pa.length - pb.length;
}

/** `/usr/bin/x` -> `usr/bin/x`; the path an entry has inside the tar. */
function tarPath(p: string): string {
  return p.replace(/^\/+/, '').replace(/\/+$/, '');
}

function tarName(e: LayerEntry): string {
  const p = tarPath(e.path);
  switch (e.type) {
    case 'dir':
      return p + '/';
    case 'whiteout': {
      const i = p.lastIndexOf('/');
      return i < 0 ? `.wh.${p}` : `${p.slice(0, i)}/.wh.${p.slice(i + 1)}`;
    }
    case 'opaque':
      return p === '' ? '.wh..wh..opq' : `${p}/.wh..wh..opq`;
    default:
      return p;
  }
}

/** Sort, de-duplicate (last wins) and make hard links point at an entry written before them. */
export function orderEntries(entries: LayerEntry[]): LayerEntry[] {
  const byName = new Map<string, LayerEntry>();
  for (const e of entries) {
    if (tarPath(e.path) === '' && e.type === 'dir') continue; // the root is never an entry
    byName.set(tarName(e), e);
  }
  const names = [...byName.keys()].sort((a, b) => comparePaths(a.replace(/\/$/, ''), b.replace(/\/$/, '')));
  const sorted = names.map((n) => byName.get(n)!);
  // Without hard links there is nothing to reorder (and no map of every file to hold: 85,000 entries at 10x).
  if (!sorted.some((e) => e.type === 'hardlink')) return sorted;
  // A hard link must follow the file it links to. After sorting, the first
  // member of each group carries the content and the others link to it.
  const groups = new Map<string, LayerEntry[]>();
  const fileByPath = new Map<string, LayerEntry>();
  for (const e of sorted) if (e.type === 'file') fileByPath.set(tarPath(e.path), e);
  for (const e of sorted) {
    if (e.type !== 'hardlink') continue;
    const target = tarPath(e.linkTarget ?? '');
    const file = fileByPath.get(target);
    if (!file) continue; // links to a file of a lower layer: keep as is
    let g = groups.get(target);
    if (!g) groups.set(target, (g = [file]));
    g.push(e);
  }
  if (groups.size === 0) return sorted;
  const replace = new Map<LayerEntry, LayerEntry>();
  const order = new Map(sorted.map((e, i) => [e, i]));
  for (const g of groups.values()) {
    g.sort((a, b) => order.get(a)! - order.get(b)!);
    const file = g.find((e) => e.type === 'file')!;
    const first = g[0]!;
    for (const member of g) {
      if (member === first) replace.set(member, { ...file, path: first.path, mode: member.mode, uid: member.uid, gid: member.gid, mtime: member.mtime });
      else replace.set(member, { ...member, type: 'hardlink', linkTarget: first.path, size: 0, content: undefined });
    }
  }
  return sorted.map((e) => replace.get(e) ?? e);
}

function headerFor(e: LayerEntry, sde: number | undefined): TarHeader {
  // Times before 1970 are stored as 0: GNU tar warns on every such member ("implausibly old time stamp").
  const mtime = Math.max(0, sde !== undefined && e.mtime > sde ? sde : Math.floor(e.mtime));
  const base = { name: tarName(e), mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime, size: 0, xattrs: e.xattrs };
  switch (e.type) {
    case 'file':
      return { ...base, type: '0', size: e.size ?? 0 };
    case 'dir':
      return { ...base, type: '5' };
    case 'symlink':
      return { ...base, type: '2', linkname: e.linkTarget ?? '' };
    case 'hardlink':
      return { ...base, type: '1', linkname: tarPath(e.linkTarget ?? '') };
    case 'char':
      return { ...base, type: '3', devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 };
    case 'block':
      return { ...base, type: '4', devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 };
    case 'fifo':
      return { ...base, type: '6' };
    case 'whiteout':
    case 'opaque':
      return { ...base, type: '0', mode: 0, uid: 0, gid: 0 };
  }
}

const ENTRY_TYPES = new Set<LayerEntry['type']>(['file', 'dir', 'symlink', 'hardlink', 'whiteout', 'opaque', 'char', 'block', 'fifo']);

/**
 * A caller's entry in the one form the writer works with: path (and a hard
 * link's target) normalised, and what no tar reader would take back refused
 * (see entry-path.ts and tar-header.ts).
 */
function checkedEntry(e: LayerEntry, location: SourceLocation | undefined): LayerEntry {
  const p = normalizeLayerPath(e.path, 'path', location);
  const show = showPath(e.path);
  if (!ENTRY_TYPES.has(e.type)) throw layerEntryError(`layer entry ${show} has unknown type ${String(e.type)}`, `use one of ${[...ENTRY_TYPES].join(', ')}`, location);
  if (p === '/' && e.type !== 'dir' && e.type !== 'opaque') throw layerEntryError(`layer entry ${show} has an empty name`, 'give the entry a path below /', location);
  const out: LayerEntry = p === e.path ? e : { ...e, path: p };
  if (e.type === 'hardlink') {
    const t = normalizeLayerPath(e.linkTarget ?? '', `hard link target of ${show}`, location);
    if (t === '/') throw layerEntryError(`hard link ${show} has no target`, 'give linkTarget the absolute image path of the linked file', location);
    if (t !== e.linkTarget) return { ...out, linkTarget: t };
  }
  if (e.type === 'symlink' && !e.linkTarget) {
    // Linux cannot create a symlink to "": every extractor fails on it.
    throw layerEntryError(`symlink ${show} has an empty target`, 'give the symlink a target', location);
  }
  return out;
}

/** Files up to this size are read ahead, concurrently, while earlier entries are written. */
const PREFETCH_MAX_FILE = 256 * 1024;
/** Read-ahead bounds: how many files, and how many bytes, may be held at once (memory stays flat). */
const PREFETCH_MAX_FILES = 32;
const PREFETCH_MAX_BYTES = 4 * 1024 * 1024;
/** Bytes per chunk handed to gzip: each write is a thread-pool round trip, so few big ones beat many 512-byte headers. */
const OUT_CHUNK = 256 * 1024;

/** Read all of an entry's content into memory, checking its size (only for small files). */
async function readSmall(e: LayerEntry, size: number): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const chunk of e.content!() as AsyncIterable<Uint8Array | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    got += buf.length;
    if (got > size) throw changedWhileReading(e.path, size);
    chunks.push(buf);
  }
  if (got !== size) throw changedWhileReading(e.path, size);
  return chunks;
}

/**
 * Reads small files ahead of the writer, in entry order, a bounded window at
 * a time. Opening and reading many small files one after the other leaves the
 * thread pool idle between them; with a window, several reads are in flight
 * while the writer hashes and compresses. The bytes still reach the tar in
 * entry order, so the output is unchanged.
 */
class Prefetcher {
  private readonly pending = new Map<number, Promise<Buffer[]>>();
  private next = 0;
  private bytes = 0;

  constructor(private readonly entries: (LayerEntry | undefined)[]) {}

  /** A file's size as its header carries it (headerFor: `size ?? 0`). */
  private size(i: number): number {
    return this.entries[i]!.size ?? 0;
  }

  private small(i: number): boolean {
    const e = this.entries[i]!;
    const size = this.size(i);
    return e.type === 'file' && size > 0 && size <= PREFETCH_MAX_FILE && !!e.content;
  }

  /** Start reads for entry `from` and those after it, within the window. */
  fill(from: number): void {
    if (this.next < from) this.next = from;
    while (this.next < this.entries.length && this.pending.size < PREFETCH_MAX_FILES) {
      const i = this.next;
      if (!this.small(i)) {
        // Big files stream when their turn comes; look past them only a little.
        if (this.next - from > PREFETCH_MAX_FILES) break;
        this.next++;
        continue;
      }
      const size = this.size(i);
      if (this.bytes + size > PREFETCH_MAX_BYTES && this.pending.size > 0) break;
      const p = readSmall(this.entries[i]!, size);
      // Errors surface when the writer reaches the entry, in order; until then keep them from being "unhandled".
      p.catch(() => undefined);
      this.pending.set(i, p);
      this.bytes += size;
      this.next++;
    }
  }

  /** The content of entry `i` if it was read ahead. */
  take(i: number): Promise<Buffer[]> | undefined {
    const p = this.pending.get(i);
    if (!p) return undefined;
    this.pending.delete(i);
    this.bytes -= this.size(i);
    return p;
  }
}

/**
 * The tar stream: headers and contents, in entry order, as small pieces.
 * Each entry is dropped from `entries` once written (and its header made
 * only then, handed to `onHeader`), so what a written entry held (its
 * content reader, its source's stat) can be collected while the rest is
 * written: memory falls as the layer is written instead of staying at
 * every entry's metadata until the end (85,000 entries at 10x).
 */
async function* tarPieces(entries: (LayerEntry | undefined)[], sde: number | undefined, onHeader: (h: TarHeader) => void, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const ahead = new Prefetcher(entries);
  for (let i = 0; i < entries.length; i++) {
    throwIfAborted(signal);
    const e = entries[i]!;
    const h = headerFor(e, sde);
    onHeader(h);
    yield encodeHeader(h);
    if (h.type !== '0' || h.size === 0) {
      entries[i] = undefined;
      continue;
    }
    if (!e.content) {
      throw new OcistackError(`layer entry ${e.path} has no content`, { code: 'LAYER_WRITE', hint: 'this is a bug in ocistack; please report it' });
    }
    ahead.fill(i);
    const read = ahead.take(i);
    if (read) {
      yield* await read;
    } else {
      let written = 0;
      for await (const chunk of e.content() as AsyncIterable<Uint8Array | string>) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (written + buf.length > h.size) {
          throw changedWhileReading(e.path, h.size);
        }
        written += buf.length;
        throwIfAborted(signal);
        yield buf;
      }
      if (written !== h.size) throw changedWhileReading(e.path, h.size);
    }
    entries[i] = undefined;
    const p = paddingFor(h.size);
    if (p.length) yield p;
  }
  yield END_OF_ARCHIVE;
}

/**
 * The tar stream in chunks of about {@link OUT_CHUNK} bytes, hashed on the
 * way (the diffId), so the compressor sees a few large writes.
 */
async function* tarStream(pieces: AsyncGenerator<Buffer>, counter: TarCounter): AsyncGenerator<Buffer> {
  let buf = Buffer.allocUnsafe(OUT_CHUNK);
  let used = 0;
  for await (const piece of pieces) {
    counter.update(piece);
    if (piece.length >= OUT_CHUNK / 2) {
      // Big pieces (file content) go through as they are, after what is buffered.
      if (used > 0) {
        yield buf.subarray(0, used);
        buf = Buffer.allocUnsafe(OUT_CHUNK);
        used = 0;
      }
      yield piece;
      continue;
    }
    if (used + piece.length > OUT_CHUNK) {
      yield buf.subarray(0, used);
      buf = Buffer.allocUnsafe(OUT_CHUNK);
      used = 0;
    }
    piece.copy(buf, used);
    used += piece.length;
  }
  if (used > 0) yield buf.subarray(0, used);
}

/** node-tar's names for the types this writer emits, so the index reads as if the layer had been scanned. */
const TAR_TYPE_NAMES: Record<string, string> = { '0': 'File', '1': 'Link', '2': 'SymbolicLink', '3': 'CharacterDevice', '4': 'BlockDevice', '5': 'Directory', '6': 'FIFO' };

function indexableAsWritten(h: TarHeader): boolean {
  return h.type !== '2' || h.linkname !== '';
}

/** The index entry a scan of this header would produce (see layer-index.ts). */
function indexEntryOfWritten(h: TarHeader): IndexedEntry {
  return indexEntryOfHeader({
    path: h.name,
    type: TAR_TYPE_NAMES[h.type] ?? 'Unsupported',
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    size: h.size,
    mtime: h.mtime,
    linkpath: h.linkname,
    xattrs: h.xattrs,
  });
}

/** sha256 and size of the uncompressed tar. */
class TarCounter {
  private readonly hash = createHash('sha256');
  size = 0;
  update(b: Buffer): void {
    this.hash.update(b);
    this.size += b.length;
  }
  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

function changedWhileReading(p: string, size: number): OcistackError {
  return new OcistackError(`${p} changed while it was being added to a layer (expected ${size} bytes)`, {
    code: 'LAYER_WRITE',
    hint: 'do not modify the build context while a build runs',
  });
}

/**
 * Write entries as a gzip-compressed OCI layer into the store.
 * Never leaves a partial blob: the temp file is removed on any failure.
 */
export async function writeLayer(entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>, opts: WriteLayerOptions): Promise<LayerResult> {
  const signal = opts.signal ?? opts.store.signal;
  const list: LayerEntry[] = [];
  for await (const e of entries as AsyncIterable<LayerEntry>) list.push(checkedEntry(e, opts.location));
  throwIfAborted(signal);
  const ordered: (LayerEntry | undefined)[] = orderEntries(list);
  list.length = 0; // the sorted copy is all that is needed from here on
  // Refuse bad fields before any byte is written. The headers are made again
  // as each entry is written (cheap), not kept: 85,000 of them at 10x.
  let indexable = true;
  try {
    for (const e of ordered) {
      const h = headerFor(e!, opts.sourceDateEpoch);
      checkHeader(h);
      if (!indexableAsWritten(h)) indexable = false;
    }
  } catch (e) {
    if (e instanceof OcistackError && !e.location && opts.location) throw new OcistackError(e.message, { code: e.code, hint: e.hint, location: opts.location, cause: e });
    throw e;
  }
  const tmp = await opts.store.tempPath('layer');
  const tarCounter = new TarCounter();
  const gzCounter = new DigestCounter();
  // The index as it will be saved, one JSON text per written entry (a few dozen bytes, not an object each).
  const index = indexable ? new IndexJsonParts() : undefined;
  const onHeader = (h: TarHeader): void => index?.add(indexEntryOfWritten(h));
  try {
    await pipeline(
      Readable.from(tarStream(tarPieces(ordered, opts.sourceDateEpoch, onHeader, signal), tarCounter), { objectMode: false, highWaterMark: OUT_CHUNK }),
      new ParallelGzip(opts.level ?? 6, GZIP_OS_UNKNOWN),
      gzCounter,
      createWriteStream(tmp, { mode: 0o644, highWaterMark: OUT_CHUNK }),
      { signal },
    ).catch((e: unknown) => {
      throw asAbortError(e, signal);
    });
    throwIfAborted(signal);
    const digest = gzCounter.digest();
    await opts.store.commitTemp(tmp, digest);
    // The next instruction opens this layer's file system: give it the index
    // now instead of a gunzip and parse later. Only for layers whose scan is
    // known to give the same entries: not with empty symlink targets (node-tar
    // may skip those). xattrs are kept by both (a scan reads them from PAX).
    if (index) await saveLayerIndexJson(opts.store, digest, index.done());
    return { digest, diffId: tarCounter.digest(), size: gzCounter.size, mediaType: MediaType.OciLayerGzip };
  } catch (e) {
    await opts.store.discardTemp(tmp);
    throw e;
  }
}
