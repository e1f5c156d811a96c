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
import type { ContextSource, FileIdentity } from './source.js';
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
/** Files hashed at once: enough to overlap I/O, few enough not to flood the thread pool. */
const HASH_CONCURRENCY = 8;
/** Files up to this size are read in one call (readHead) instead of through a stream. */
const SMALL_FILE = 1 << 20;
const CACHE_VERSION = 1;

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
  entries: Record<string, StatEntry>;
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

/** Entries of a cache file; anything unreadable or malformed is an empty cache. */
async function loadEntries(file: string): Promise<Map<string, StatEntry>> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  try {
    const parsed = JSON.parse(text) as CacheFile;
    if (parsed?.version !== CACHE_VERSION || typeof parsed.entries !== 'object' || parsed.entries === null) return new Map();
    const out = new Map<string, StatEntry>();
    for (const [rel, e] of Object.entries(parsed.entries)) {
      if (validEntry(e)) out.set(rel, e);
    }
    return out;
  } catch {
    return new Map();
  }
}

function validEntry(e: unknown): e is StatEntry {
  const x = e as StatEntry;
  return (
    !!x &&
    Number.isSafeInteger(x.size) &&
    typeof x.mtimeNs === 'string' &&
    typeof x.ctimeNs === 'string' &&
    typeof x.ino === 'string' &&
    typeof x.dev === 'string' &&
    Number.isSafeInteger(x.mode) &&
    typeof x.digest === 'string' &&
    /^sha256:[0-9a-f]{64}$/.test(x.digest) &&
    Number.isFinite(x.seenMs)
  );
}

type Identity = Omit<StatEntry, 'digest' | 'seenMs'>;

function identity(st: BigIntStats): Identity {
  return { size: Number(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs), ino: String(st.ino), dev: String(st.dev), mode: Number(st.mode) };
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

function sameIdentity(a: Identity, b: Identity): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev && a.mode === b.mode;
}

function sameEntry(a: StatEntry, b: StatEntry): boolean {
  return sameIdentity(a, b) && a.digest === b.digest;
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
  const loaded = await loadEntries(file);
  /** What this build learned or confirmed, by path; null: looked at and not to be remembered. */
  const seen = new Map<string, StatEntry | null>();
  const inFlight = new Map<string, Promise<Digest>>();
  const limit = limiter(HASH_CONCURRENCY);
  const abs = (rel: string): string => (rel === '' ? context.dir : path.join(context.dir, ...rel.split('/')));
  const margin = BigInt(RACY_MARGIN_MS) * 1_000_000n;

  /** A stat-cache hit on the walk's identity: the digest, and this build saw the entry. */
  function hit(rel: string, known: FileIdentity): Digest | undefined {
    if ((known.mode & S_IFMT) !== S_IFREG) return undefined;
    const cached = loaded.get(rel);
    if (!cached || !sameIdentity(cached, known)) return undefined;
    seen.set(rel, cached.seenMs === known.statMs ? cached : { ...cached, seenMs: known.statMs });
    return cached.digest;
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
    const id = before && before.isFile() ? identity(before) : undefined;
    const cached = loaded.get(rel);
    if (id && cached && sameIdentity(cached, id)) {
      seen.set(rel, { ...cached, seenMs: statMs });
      return cached.digest;
    }
    const digest = await limit(() => hashFile(context.source, rel, id?.size ?? SMALL_FILE));
    let entry: StatEntry | null = null;
    if (id) {
      // Unchanged from before the read to after it, and old enough to trust.
      const after = await fsp.lstat(abs(rel), { bigint: true }).catch(() => undefined);
      const limitNs = BigInt(statMs) * 1_000_000n - margin;
      const settled = before!.mtimeNs < limitNs && before!.ctimeNs < limitNs;
      if (after && sameIdentity(id, identity(after)) && settled) entry = { ...id, digest, seenMs: statMs };
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
        if (e === null ? old !== undefined : !old || !sameEntry(old, e)) changed = true;
      }
      if (!changed) return;
      // Merge with what is on disk now (a concurrent build may have saved since we loaded).
      const onDisk = await loadEntries(file);
      const now = Date.now();
      const entries: Record<string, StatEntry> = {};
      const rels = new Set([...onDisk.keys(), ...seen.keys()]);
      for (const rel of [...rels].sort()) {
        const mine = seen.get(rel);
        if (mine === null) continue;
        const e = mine ?? onDisk.get(rel)!;
        if (!mine && now - e.seenMs > UNSEEN_TTL_MS) continue;
        entries[rel] = e;
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
