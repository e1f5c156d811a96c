/**
 * Index of a layer's tar headers (path, type, mode, owner, size, link target),
 * so the build knows an image's files without extracting it. Built once per
 * layer by streaming the blob, cached on disk beside the blobs as
 * `<store>/index/sha256/<hex>.json`; the cache key is the layer digest, which
 * fixes the content, so an entry never goes stale.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ReadEntry } from 'tar';
import { OcistackError } from '../errors.js';
import { removeTemp, tempName, trackTemp } from '../temp-files.js';
import { digestHex } from '../image/digest.js';
import type { BlobStore } from '../image/store.js';
import type { Digest } from '../image/types.js';
import type { FileMeta } from './types.js';
import { decompressFile, detectCompression, readHead } from './decompress.js';
import { PaxXattrTracker } from './pax.js';

export type IndexedType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'whiteout' | 'opaque' | 'other';

/** One tar header, as the index keeps it. */
export interface IndexedEntry extends FileMeta {
  /** Absolute image path without trailing slash (`/usr/bin`); for whiteouts the path that is deleted. */
  path: string;
  type: IndexedType;
  /** symlink: target as stored. hardlink: absolute path of the linked entry. */
  linkTarget?: string;
}

export interface LayerIndex {
  /** Format version; an index of another version is rebuilt, never read. */
  version: typeof INDEX_VERSION;
  digest: Digest;
  entries: IndexedEntry[];
}

/** 2: entries carry xattrs (version 1 indexes were built by scans that dropped them). */
const INDEX_VERSION = 2;

/** Where the index of a layer is cached. */
export function layerIndexPath(store: BlobStore, digest: Digest): string {
  return path.join(store.root, 'index', 'sha256', `${digestHex(digest)}.json`);
}

/** `./usr/bin/` -> `/usr/bin`. */
export function normalizeTarPath(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  const out: string[] = [];
  for (const s of parts) {
    if (s === '..') out.pop();
    else out.push(s);
  }
  return '/' + out.join('/');
}

function mapType(t: string): IndexedType {
  switch (t) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return 'file';
    case 'Directory':
      return 'dir';
    case 'SymbolicLink':
      return 'symlink';
    case 'Link':
      return 'hardlink';
    default:
      return 'other';
  }
}

/** The header fields an index entry is made of, whoever read them (node-tar, or the layer writer that wrote them). */
export interface HeaderFields {
  path: string;
  /** node-tar's type name: File, Directory, SymbolicLink, Link, ... */
  type: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** Seconds since epoch. */
  mtime?: number;
  linkpath?: string;
  xattrs?: Record<string, string>;
}

/**
 * Turn one tar entry into an index entry (whiteouts recognised). `xattrs`
 * come from the scan (see {@link scanLayer}): node-tar's entry lacks them.
 */
export function indexEntryOf(entry: ReadEntry, xattrs?: Record<string, string>): IndexedEntry {
  return indexEntryOfHeader({
    path: entry.path,
    type: entry.type,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    size: entry.size,
    mtime: entry.mtime ? Math.floor(entry.mtime.getTime() / 1000) : 0,
    linkpath: entry.linkpath,
    xattrs,
  });
}

/** {@link indexEntryOf} for header fields from any source. */
export function indexEntryOfHeader(h: HeaderFields): IndexedEntry {
  const abs = normalizeTarPath(h.path);
  const base = abs.slice(abs.lastIndexOf('/') + 1);
  const dir = abs.slice(0, abs.lastIndexOf('/')) || '/';
  const common = {
    mode: (h.mode ?? 0) & 0o7777,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    size: h.size ?? 0,
    mtime: h.mtime ?? 0,
  };
  if (base === '.wh..wh..opq') return { path: dir, type: 'opaque', ...common };
  if (base.startsWith('.wh.')) return { path: (dir === '/' ? '' : dir) + '/' + base.slice(4), type: 'whiteout', ...common };
  const type = mapType(h.type);
  const e: IndexedEntry = { path: abs, type, ...common };
  if (type === 'symlink') e.linkTarget = h.linkpath ?? '';
  if (type === 'hardlink') e.linkTarget = normalizeTarPath(h.linkpath ?? '');
  if (type !== 'file') e.size = 0;
  if (h.xattrs && Object.keys(h.xattrs).length) e.xattrs = h.xattrs;
  return e;
}

/**
 * Stream the (decompressed) tar of a layer blob through node-tar's parser.
 * `onEntry` may consume the entry; entries it leaves alone are drained. It
 * also gets the entry's xattrs (byte strings, latin1), which node-tar drops:
 * they are read from the PAX headers on the way into the parser.
 */
export async function scanLayer(
  store: BlobStore,
  digest: Digest,
  onEntry: (entry: ReadEntry, xattrs: Record<string, string> | undefined) => void | Promise<void>,
): Promise<void> {
  const file = store.path(digest);
  const head = await readHead(file, 8).catch((e: unknown) => {
    throw new OcistackError(`layer ${digest} is not in the blob store`, { code: 'LAYER_MISSING', hint: 'pull the base image again', cause: e });
  });
  // node-tar is imported when a layer is first scanned, not at start-up (~20 ms of
  // CPU on every CLI run, most of which never scan a layer: a cached rebuild).
  const { Parser } = await import('tar');
  const pending: Promise<void>[] = [];
  const pax = new PaxXattrTracker();
  let fatal: Error | undefined;
  const parser = new Parser({
    // Not strict: real-world layers carry oddities (a link name on a plain
    // file, an empty symlink target) that node-tar reports and skips. Only
    // corruption fails the scan: a bad checksum or a truncated archive.
    strict: false,
    onwarn: (code: string, message: string | Error) => {
      const text = typeof message === 'string' ? message : message.message;
      if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT' || /checksum/.test(text)) fatal ??= new Error(text);
    },
    onReadEntry: (entry: ReadEntry) => {
      const r = onEntry(entry, pax.take(entry));
      if (r) pending.push(r);
      // Entries nobody piped are drained so the parser keeps going.
      if (!entry.listenerCount('data')) entry.resume();
    },
  });
  try {
    await pipeline(
      decompressFile(file, detectCompression(head), `layer ${digest}`),
      // The tracker sees each chunk before the parser does, so an entry's xattrs are known when node-tar emits it.
      pax.stream(),
      parser as unknown as NodeJS.WritableStream,
    );
    await Promise.all(pending);
    if (fatal) throw fatal;
  } catch (e) {
    if (e instanceof OcistackError) throw e;
    throw new OcistackError(`cannot read layer ${digest}: ${(e as Error).message}`, {
      code: 'LAYER_READ',
      hint: 'the cached layer is corrupt; remove it from the cache directory and pull again',
      cause: e,
    });
  }
}

/**
 * Cache the index of a layer whose entries are already known (the writer
 * that just made it), so the next instruction need not gunzip and parse it.
 * Best effort: the index is a cache, and {@link indexLayer} rebuilds it from
 * the blob when it is missing.
 */
export async function saveLayerIndex(store: BlobStore, digest: Digest, entries: IndexedEntry[]): Promise<void> {
  const parts = new IndexJsonParts();
  for (const e of entries) parts.add(e);
  await saveLayerIndexJson(store, digest, parts.done());
}

/**
 * The `entries` of an index as JSON text, built one entry at a time (the
 * layer writer adds each as it writes it): the text of 85,000 entries is a
 * few MB, the objects several times that. Joined in groups so there are
 * few strings to hold.
 */
export class IndexJsonParts {
  private readonly groups: string[] = [];
  private group: string[] = [];

  add(e: IndexedEntry): void {
    this.group.push(JSON.stringify(e));
    if (this.group.length >= 1024) this.flush();
  }

  private flush(): void {
    if (this.group.length) this.groups.push(this.group.join(','));
    this.group = [];
  }

  /** The entries' JSON texts, in order, each group a comma-separated run. */
  done(): string[] {
    this.flush();
    return this.groups;
  }
}

/** {@link saveLayerIndex} from {@link IndexJsonParts}: the same bytes JSON.stringify of the whole index gives. */
export async function saveLayerIndexJson(store: BlobStore, digest: Digest, groups: string[]): Promise<void> {
  const cached = layerIndexPath(store, digest);
  try {
    await fsp.mkdir(path.dirname(cached), { recursive: true });
    // Owner-named and registered (lib/temp-files.ts), so an interrupted build leaves none.
    const tmp = path.join(path.dirname(cached), tempName(`${path.basename(cached)}.tmp`));
    trackTemp(tmp);
    // JSON.stringify({ version, digest, entries }) written in pieces: no one string of the whole index.
    const head = `{"version":${JSON.stringify(INDEX_VERSION)},"digest":${JSON.stringify(digest)},"entries":[`;
    await fsp.writeFile(tmp, (function* () {
      yield head;
      for (let i = 0; i < groups.length; i++) yield i === 0 ? groups[i]! : ',' + groups[i]!;
      yield ']}';
    })()).then(() => fsp.rename(tmp, cached)).finally(() => removeTemp(tmp));
  } catch {
    // A missing index is rebuilt from the blob on first use.
  }
}

/** Build (or load from the cache) the header index of a layer. */
export async function indexLayer(store: BlobStore, digest: Digest): Promise<LayerIndex> {
  const cached = layerIndexPath(store, digest);
  try {
    const idx = JSON.parse(await fsp.readFile(cached, 'utf8')) as LayerIndex;
    if (idx.version === INDEX_VERSION && idx.digest === digest) return idx;
  } catch {
    // not cached yet (or unreadable): rebuild below
  }
  const entries: IndexedEntry[] = [];
  await scanLayer(store, digest, (entry, xattrs) => {
    entries.push(indexEntryOf(entry, xattrs));
  });
  const idx: LayerIndex = { version: INDEX_VERSION, digest, entries };
  await fsp.mkdir(path.dirname(cached), { recursive: true });
  const tmp = path.join(path.dirname(cached), tempName(`${path.basename(cached)}.tmp`));
  trackTemp(tmp);
  await fsp.writeFile(tmp, JSON.stringify(idx)).then(() => fsp.rename(tmp, cached)).finally(() => removeTemp(tmp));
  return idx;
}

