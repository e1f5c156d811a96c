/**
 * Content digests of context files, for cache keys (issue 11), with a stat
 * cache so an unchanged context is hashed by a stat walk alone.
 *
 * The contract the engine codes against: `fileDigest(rel)` is the sha256 of
 * a regular file's bytes; `save()` keeps what was learned for the next build.
 *
 * The stat cache: one JSON file per context directory,
 *   <cacheDir>/buildcache/contexts/<sha256 of the context's absolute path>.json
 * mapping a context-relative path to the file's lstat identity (size, mtime
 * and ctime in nanoseconds, inode, device, mode) and the digest of its bytes.
 * A file whose lstat is unchanged gets its digest without being read; any
 * other is read, hashed and remembered. ctime is in the identity because it
 * cannot be set from user space: a content change that keeps size and
 * (restored) mtime still moves ctime, and so does chmod.
 *
 * Racy entries (the "racy git" problem, solved the way git does it, by not
 * trusting a timestamp that is too recent to tell two versions apart): a
 * file written in the same timestamp tick as our lstat could change again
 * without its mtime/ctime moving. So an entry is only remembered when its
 * mtime and ctime are older than the moment we took its lstat minus
 * {@link RACY_MARGIN_MS} (covering coarse file system clocks), and when the
 * lstat after reading equals the one before (not modified while we read).
 * Such a file is simply hashed again next time. The moment of the lstat is
 * before the save, so this is stricter than git's "older than the index
 * file" rule.
 *
 * Saving: written whole to an owner-named temp file (lib/temp-files.ts) and
 * renamed into place, so a reader sees an old or a new cache, never half of
 * one. Two builds saving at once: the last rename wins, and both files are
 * correct (every entry was checked when it was made). A save first re-reads
 * the file on disk and keeps the entries of paths this build did not look
 * at (another Dockerfile on the same context), unless they were not
 * confirmed for {@link UNSEEN_TTL_MS}; nothing is written when nothing
 * changed. A missing, unreadable or corrupt cache file is an empty cache.
 */
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { lstatSync, type BigIntStats } from 'node:fs';
import { removeTemp, sweepStaleTemps, tempName, trackTemp, untrackTemp } from '../temp-files.js';
import type { BuildContext } from './context.js';
import { identityKey, type ContextSource, type FileIdentity } from './source.js';
import type { Digest } from '../image/types.js';

export interface ContentDigests {
  /**
   * sha256 of the regular file `rel` (context-relative, normalised).
   * `known`: its lstat identity from the walk that found it (ContextStat's
   * `identity`), so a stat-cache hit costs no second lstat; it must have been
   * taken with `statMs` read before the lstat.
   */
  fileDigest(rel: string, known?: FileIdentity): Promise<Digest>;
  /**
   * The digest of `rel` when `known` (its lstat identity, as for
   * {@link fileDigest}) is what the stat cache holds; undefined otherwise
   * (then call fileDigest). Synchronous: an unchanged context of thousands
   * of files is confirmed without a promise per file.
   */
  knownDigest?(rel: string, known: FileIdentity): Digest | undefined;
  /** Keep what was learned for the next build (atomic; safe under two concurrent builds). */
  save(): Promise<void>;
}

export interface OpenContentDigestsOptions {
  context: BuildContext;
  /** The cache dir (BlobStore root); the stat cache lives below it. */
  cacheDir: string;
}

/** Timestamps younger than this (before our lstat) are not trusted: file system clocks tick coarsely. */
export const RACY_MARGIN_MS = 2000;
/** Entries of paths no build looked at for this long are dropped on save. */
export const UNSEEN_TTL_MS = 14 * 24 * 3600 * 1000;
/** A confirmed entry's seenMs is rewritten when older than this (it only bounds {@link UNSEEN_TTL_MS}). */
const SEEN_REFRESH_MS = 24 * 3600 * 1000;
/** Files hashed at once: enough to overlap I/O, few enough not to flood the thread pool. */
const HASH_CONCURRENCY = 8;
/** Files up to this size are read in one call (readHead) instead of through a stream. */
const SMALL_FILE = 1 << 20;
/**
 * Version 2 stores an entry as one string, `"<identity> <digest hex> <seenMs>"`
 * with `<identity>` = `size:mtimeNs:ctimeNs:ino:dev:mode` (source.ts identityKey):
 * at 85,000 files, version 1's object per entry cost ~0.6 s of JSON.parse,
 * validation and GC on every cached build (docs/performance.md). A hit is a
 * string prefix comparison; an entry is only taken apart when it is used.
 * A version 1 file is an empty cache (read once more, then version 2).
 */
const CACHE_VERSION = 2;

/** What identifies one version of a file, and its digest. */
export interface StatEntry {
  size: number;
  /** Nanoseconds since the epoch, as decimal strings (beyond 2^53). */
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  dev: string;
  /** The full st_mode (type and permission bits). */
  mode: number;
  digest: Digest;
  /** When a build last confirmed this entry (ms since the epoch). */
  seenMs: number;
}

interface CacheFile {
  version: typeof CACHE_VERSION;
  /** The context directory, for people reading the file (the name is its hash). */
  context: string;
  /** Context-relative path -> `"<identity> <digest hex> <seenMs>"`. */
  entries: Record<string, string>;
}

/** The directory that holds every context's stat cache. */
export function statCachesDir(cacheDir: string): string {
  return path.join(path.resolve(cacheDir), 'buildcache', 'contexts');
}

/** The stat cache file of one context directory. */
export function statCachePath(cacheDir: string, contextDir: string): string {
  const hex = createHash('sha256').update(path.resolve(contextDir)).digest('hex');
  return path.join(statCachesDir(cacheDir), `${hex}.json`);
}

/** Which version of the cache file was read: its stat, taken before the read. */
type FileVersion = string | undefined;

async function fileVersion(file: string): Promise<FileVersion> {
  const st = await fsp.stat(file, { bigint: true }).catch(() => undefined);
  return st && `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** Entries of a cache file, as stored (checked when used); anything unreadable or malformed is an empty cache. */
async function loadEntries(file: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  try {
    const parsed = JSON.parse(text) as CacheFile;
    if (parsed?.version !== CACHE_VERSION || typeof parsed.entries !== 'object' || parsed.entries === null) return new Map();
    const out = new Map<string, string>();
    for (const rel in parsed.entries) {
      const line = parsed.entries[rel];
      if (typeof line === 'string') out.set(rel, line);
    }
    return out;
  } catch {
    return new Map();
  }
}

const ENTRY = /^(\d+):(\d+):(\d+):(\d+):(\d+):(\d+) ([0-9a-f]{64}) (\d+)$/;

/** A stored entry taken apart; undefined when malformed (then it is no entry). */
export function parseStatEntry(line: string): StatEntry | undefined {
  const m = ENTRY.exec(line);
  if (!m) return undefined;
  const e: StatEntry = { size: Number(m[1]), mtimeNs: m[2]!, ctimeNs: m[3]!, ino: m[4]!, dev: m[5]!, mode: Number(m[6]), digest: `sha256:${m[7]!}`, seenMs: Number(m[8]) };
  return Number.isSafeInteger(e.size) && Number.isSafeInteger(e.mode) && Number.isSafeInteger(e.seenMs) ? e : undefined;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The digest of a stored entry when it is for identity `key`; undefined otherwise (or malformed). */
function digestFor(line: string | undefined, key: string): Digest | undefined {
  if (line === undefined || line.length < key.length + 67 || !line.startsWith(key) || line.charCodeAt(key.length) !== 32 || line.charCodeAt(key.length + 65) !== 32) return undefined;
  const hex = line.slice(key.length + 1, key.length + 65);
  return HEX64.test(hex) && /^\d+$/.test(line.slice(key.length + 66)) ? `sha256:${hex}` : undefined;
}

/** Same identity and digest (seenMs aside). */
function sameStored(a: string, b: string): boolean {
  const i = a.lastIndexOf(' ');
  return i === b.lastIndexOf(' ') && a.startsWith(b.slice(0, i));
}

function withSeenMs(line: string, seenMs: number): string {
  return `${line.slice(0, line.lastIndexOf(' '))} ${seenMs}`;
}

function seenMsOf(line: string): number {
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

function entryLine(key: string, digest: Digest, seenMs: number): string {
  return `${key} ${digest.slice('sha256:'.length)} ${seenMs}`;
}

/** A small counting semaphore. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

async function hashFile(source: ContextSource, rel: string, size: number): Promise<Digest> {
  const hash = createHash('sha256');
  if (source.readHead && size < SMALL_FILE) {
    // One read of size+1 bytes: a file that grew meanwhile shows up as a changed lstat after.
    hash.update(await source.readHead(rel, size + 1));
  } else {
    for await (const chunk of source.open(rel)) hash.update(chunk as Buffer);
  }
  return `sha256:${hash.digest('hex')}`;
}

export async function openContentDigests(opts: OpenContentDigestsOptions): Promise<ContentDigests> {
  const { context } = opts;
  const file = statCachePath(opts.cacheDir, context.dir);
  // Stat before the read: a save that finds the same version on disk need not read it again.
  let loadedVersion = await fileVersion(file);
  const loaded = await loadEntries(file);
  /**
   * What this build learned or confirmed, by path, as the line to store
   * (its seenMs refreshed at save when a day old); null: looked at and not to be remembered.
   * A hit keeps the loaded string itself, so "unchanged" is an identity test.
   */
  const seen = new Map<string, string | null>();
  const inFlight = new Map<string, Promise<Digest>>();
  const limit = limiter(HASH_CONCURRENCY);
  const abs = (rel: string): string => (rel === '' ? context.dir : path.join(context.dir, ...rel.split('/')));
  const margin = BigInt(RACY_MARGIN_MS) * 1_000_000n;

  /** The cached digest of `rel` when `key` is the identity stored for it; this build saw the entry. */
  function cachedDigest(rel: string, key: string): Digest | undefined {
    const line = loaded.get(rel);
    const digest = digestFor(line, key);
    if (digest) seen.set(rel, line!);
    return digest;
  }

  /** A stat-cache hit on the walk's identity. */
  function hit(rel: string, known: FileIdentity): Digest | undefined {
    return cachedDigest(rel, known.key);
  }

  async function digestOf(rel: string, known: FileIdentity | undefined): Promise<Digest> {
    // The walk's identity answers a hit. A miss is read anyway, so it takes
    // its own lstat first, as without one: the bytes are hashed against a
    // size and identity taken just before the read, not at the walk (a file
    // changed since would otherwise be read short and stored under an
    // identity it no longer has).
    if (known) {
      const d = hit(rel, known);
      if (d) return d;
    }
    const statMs = Date.now();
    let before: BigIntStats | undefined;
    try {
      // Synchronous on purpose: a cache hit is one lstat, and the promise API's thread-pool
      // round trip costs 2-4x the call itself (measured: 8,500 files, docs/performance.md).
      before = lstatSync(abs(rel), { bigint: true, throwIfNoEntry: false });
    } catch {
      before = undefined; // not on disk under context.dir (another kind of source): hash, remember nothing
    }
    const id = before && before.isFile() ? identityKey(before) : undefined;
    if (id) {
      const d = cachedDigest(rel, id);
      if (d) return d;
    }
    const digest = await limit(() => hashFile(context.source, rel, before && id ? Number(before.size) : SMALL_FILE));
    let entry: string | null = null;
    if (id) {
      // Unchanged from before the read to after it, and old enough to trust.
      const after = await fsp.lstat(abs(rel), { bigint: true }).catch(() => undefined);
      const limitNs = BigInt(statMs) * 1_000_000n - margin;
      const settled = before!.mtimeNs < limitNs && before!.ctimeNs < limitNs;
      if (after && identityKey(after) === id && settled) entry = entryLine(id, digest, statMs);
    }
    seen.set(rel, entry);
    return digest;
  }

  return {
    knownDigest(rel: string, known: FileIdentity): Digest | undefined {
      // One in flight (being hashed) is not a hit: its promise is the answer.
      return inFlight.has(rel) ? undefined : hit(rel, known);
    },

    fileDigest(rel: string, known?: FileIdentity): Promise<Digest> {
      let p = inFlight.get(rel);
      if (!p) {
        p = digestOf(rel, known);
        inFlight.set(rel, p);
        // A failed read is not cached: the next call tries again.
        p.catch(() => inFlight.delete(rel));
      }
      return p;
    },

    async save(): Promise<void> {
      let changed = false;
      for (const [rel, e] of seen) {
        const old = loaded.get(rel);
        if (e === null ? old !== undefined : old !== e && (old === undefined || !sameStored(old, e))) {
          changed = true;
          break;
        }
      }
      if (!changed) return;
      // Merge with what is on disk now (a concurrent build may have saved since we loaded);
      // a file a rename replaced has another inode, so an unchanged version is what we hold.
      const version = await fileVersion(file);
      const onDisk = version !== undefined && version === loadedVersion ? loaded : await loadEntries(file);
      const now = Date.now();
      const entries: Record<string, string> = {};
      // Not sorted (85,000 names at 10x): readers look entries up by name.
      for (const [rel, mine] of seen) {
        // seenMs only bounds the TTL: refreshed when a day old, so a hit's string is kept as it is.
        if (mine !== null) entries[rel] = now - seenMsOf(mine) > SEEN_REFRESH_MS ? withSeenMs(mine, now) : mine;
      }
      for (const [rel, theirs] of onDisk) {
        if (!seen.has(rel) && !(now - seenMsOf(theirs) > UNSEEN_TTL_MS)) entries[rel] = theirs;
      }
      const body: CacheFile = { version: CACHE_VERSION, context: context.dir, entries };
      const tmpDir = path.join(path.resolve(opts.cacheDir), 'buildcache', 'tmp');
      await fsp.mkdir(tmpDir, { recursive: true });
      await fsp.mkdir(path.dirname(file), { recursive: true });
      await sweepOnce(tmpDir);
      const tmp = path.join(tmpDir, tempName('contexts'));
      trackTemp(tmp);
      try {
        await fsp.writeFile(tmp, JSON.stringify(body));
        await fsp.rename(tmp, file);
        untrackTemp(tmp);
        // Not known to be ours any more (another build may rename over it): a next save reads it.
        loadedVersion = undefined;
      } catch (e) {
        await removeTemp(tmp);
        throw e;
      }
      // What is on disk now is what the next save compares against.
      loaded.clear();
      for (const [rel, e] of Object.entries(entries)) loaded.set(rel, e);
      seen.clear();
    },
  };
}

const swept = new Set<string>();
async function sweepOnce(dir: string): Promise<void> {
  if (swept.has(dir)) return;
  swept.add(dir);
  await sweepStaleTemps(dir).catch(() => undefined);
}
