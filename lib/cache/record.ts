/**
 * The instruction cache's records: one JSON file per cache key, holding what
 * a step produced (its layer, if any, and its history entry), so a later
 * build with the same key reuses the result without doing the work.
 *
 * Layout under the cache dir (the BlobStore root):
 *   buildcache/records/<hex of key>.json   one record, written by atomic rename
 *   buildcache/tmp/                         records being written (owner-named temps)
 * A record's mtime is its last use: a hit touches it, so `cache prune
 * --keep-storage` can drop the least recently used first. Records name
 * blobs by digest; the blobs live in the store's blobs/ like every other.
 *
 * This module is the contract between the engine (writes and reads
 * records), `ocistack cache ls|du|prune` (lists, measures, deletes) and the
 * registry cache (exports and imports records).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { removeTemp, sweepStaleTemps, tempName, trackTemp, untrackTemp } from '../temp-files.js';
import { digestHex, isDigest } from '../image/digest.js';
import type { Digest } from '../image/types.js';

export const RECORD_VERSION = 1;

/** The layer a step added, as the manifest and the config name it. */
export interface RecordLayer {
  mediaType: string;
  digest: Digest;
  size: number;
  diffId: Digest;
}

/** A history entry as written into the image config. */
export interface RecordHistory {
  created: string;
  created_by: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface CacheRecord {
  version: typeof RECORD_VERSION;
  /** The cache key: sha256 of the step's canonical key material. */
  key: Digest;
  /** What the step was, for `cache ls` (credentials redacted): e.g. `[build 3/7] COPY . /app`. */
  description: string;
  /** Which kind of step: `copy`, `add`, `run`, `workdir`, or another instruction's kind. */
  kind: string;
  /** When the record was first written (ISO 8601). */
  created: string;
  /** The layers the step added, base first (none for a metadata-only or empty step). */
  layers: RecordLayer[];
  /** The history entries the step added, in order (reused on a hit, so timestamps do not change). */
  history: RecordHistory[];
}

export function buildCacheRoot(cacheDir: string): string {
  return path.join(cacheDir, 'buildcache');
}

export function recordsDir(cacheDir: string): string {
  return path.join(buildCacheRoot(cacheDir), 'records');
}

export function recordPath(cacheDir: string, key: Digest): string {
  return path.join(recordsDir(cacheDir), `${digestHex(key)}.json`);
}

/** The record for `key`, or undefined when there is none or it cannot be read as one (a bad record is a miss, never fatal). */
export async function readRecord(cacheDir: string, key: Digest): Promise<CacheRecord | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(recordPath(cacheDir, key), 'utf8');
  } catch {
    return undefined;
  }
  return parseRecord(text, key);
}

export function parseRecord(text: string, key?: Digest): CacheRecord | undefined {
  try {
    const r = JSON.parse(text) as CacheRecord;
    if (r?.version !== RECORD_VERSION || !isDigest(r.key) || (key && r.key !== key)) return undefined;
    if (!Array.isArray(r.layers) || !Array.isArray(r.history)) return undefined;
    if (!r.layers.every((l) => isDigest(l.digest) && isDigest(l.diffId) && Number.isSafeInteger(l.size))) return undefined;
    return r;
  } catch {
    return undefined;
  }
}

/** Write a record by atomic rename: readers see the old one, the new one, or none; never half of one. */
export async function writeRecord(cacheDir: string, record: CacheRecord): Promise<void> {
  const root = buildCacheRoot(cacheDir);
  const tmpDir = path.join(root, 'tmp');
  await fsp.mkdir(tmpDir, { recursive: true });
  await fsp.mkdir(recordsDir(cacheDir), { recursive: true });
  await sweepOnce(tmpDir);
  const tmp = path.join(tmpDir, tempName('record'));
  trackTemp(tmp);
  try {
    await fsp.writeFile(tmp, JSON.stringify(record) + '\n');
    await fsp.rename(tmp, recordPath(cacheDir, record.key));
  } finally {
    untrackTemp(tmp);
    await removeTemp(tmp);
  }
}

/** Mark a record used now (its mtime is its last use). A record removed meanwhile is no error. */
export async function touchRecord(cacheDir: string, key: Digest): Promise<void> {
  const now = new Date();
  await fsp.utimes(recordPath(cacheDir, key), now, now).catch(() => undefined);
}

export interface ListedRecord {
  record: CacheRecord;
  /** Last use (the file's mtime), ms since epoch. */
  lastUsedMs: number;
  file: string;
}

/** Every readable record; unreadable files are skipped. */
export async function listRecords(cacheDir: string): Promise<ListedRecord[]> {
  const dir = recordsDir(cacheDir);
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const out: ListedRecord[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith('.json')) continue;
    const file = path.join(dir, name);
    try {
      const [text, st] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file)]);
      const record = parseRecord(text);
      if (record && `${digestHex(record.key)}.json` === name) out.push({ record, lastUsedMs: st.mtimeMs, file });
    } catch {
      // removed by a concurrent prune: not listed
    }
  }
  return out;
}

const swept = new Set<string>();
async function sweepOnce(dir: string): Promise<void> {
  if (swept.has(dir)) return;
  swept.add(dir);
  await sweepStaleTemps(dir).catch(() => undefined);
}
