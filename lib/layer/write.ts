/**
 * Write a layer: entries -> tar -> sha256 (diffId) -> gzip -> sha256 (digest)
 * -> temp file in the blob store -> atomic commit. One pass; file contents
 * stream through, only entry metadata is held in memory (to sort it).
 *
 * Reproducibility: entries are sorted by path (parents first), duplicates
 * collapse to the last one given, the gzip header carries no time, a fixed
 * OS byte and no name, and with `sourceDateEpoch` every mtime is clamped.
 */
import { createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { OcistackError } from '../errors.js';
import { MediaType } from '../image/types.js';
import { BlobStore, DigestCounter } from '../image/store.js';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type TarHeader } from './tar-header.js';
import type { LayerEntry, LayerResult } from './types.js';

export interface WriteLayerOptions {
  store: BlobStore;
  /** Clamp every mtime to this (seconds since epoch). */
  sourceDateEpoch?: number;
  /** gzip level (default 6). Part of the output: keep it fixed for reproducible digests. */
  level?: number;
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
  const mtime = sde !== undefined && e.mtime > sde ? sde : Math.floor(e.mtime);
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
    case 'whiteout':
    case 'opaque':
      return { ...base, type: '0', mode: 0, uid: 0, gid: 0 };
  }
}

async function* tarStream(entries: LayerEntry[], sde: number | undefined): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const h = headerFor(e, sde);
    yield encodeHeader(h);
    if (h.type !== '0' || h.size === 0) continue;
    if (!e.content) {
      throw new OcistackError(`layer entry ${e.path} has no content`, { code: 'LAYER_WRITE', hint: 'this is a bug in ocistack; please report it' });
    }
    let written = 0;
    for await (const chunk of e.content() as AsyncIterable<Uint8Array | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (written + buf.length > h.size) {
        throw changedWhileReading(e.path, h.size);
      }
      written += buf.length;
      yield buf;
    }
    if (written !== h.size) throw changedWhileReading(e.path, h.size);
    const p = paddingFor(h.size);
    if (p.length) yield p;
  }
  yield END_OF_ARCHIVE;
}

function changedWhileReading(p: string, size: number): OcistackError {
  return new OcistackError(`${p} changed while it was being added to a layer (expected ${size} bytes)`, {
    code: 'LAYER_WRITE',
    hint: 'do not modify the build context while a build runs',
  });
}

/** Rewrites the 10-byte gzip header: no mtime, fixed OS byte. */
class GzipHeaderFix extends Transform {
  private seen = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen < 10) {
      chunk = Buffer.from(chunk);
      for (let i = 0; i < chunk.length && this.seen + i < 10; i++) {
        const pos = this.seen + i;
        if (pos >= 4 && pos <= 7) chunk[i] = 0; // MTIME
        if (pos === 9) chunk[i] = GZIP_OS_UNKNOWN; // OS
      }
      this.seen += chunk.length;
    }
    cb(null, chunk);
  }
}

/**
 * Write entries as a gzip-compressed OCI layer into the store.
 * Never leaves a partial blob: the temp file is removed on any failure.
 */
export async function writeLayer(entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>, opts: WriteLayerOptions): Promise<LayerResult> {
  const list: LayerEntry[] = [];
  for await (const e of entries as AsyncIterable<LayerEntry>) list.push(e);
  const ordered = orderEntries(list);
  const tmp = await opts.store.tempPath('layer');
  const tarCounter = new DigestCounter();
  const gzCounter = new DigestCounter();
  try {
    await pipeline(
      Readable.from(tarStream(ordered, opts.sourceDateEpoch)),
      tarCounter,
      zlib.createGzip({ level: opts.level ?? 6 }),
      new GzipHeaderFix(),
      gzCounter,
      createWriteStream(tmp, { mode: 0o644 }),
    );
    const digest = gzCounter.digest();
    await opts.store.commitTemp(tmp, digest);
    return { digest, diffId: tarCounter.digest(), size: gzCounter.size, mediaType: MediaType.OciLayerGzip };
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
