/**
 * Inter-process locks on one file name, with owners and race-free recovery
 * of locks whose owner died.
 *
 * A lock `L` is a file holding its owner record (JSON: pid, start time,
 * host, boot id — see process-owner.ts — and a random `nonce` that no other
 * lock ever has). Files are never written in place: every record is first
 * written whole to a temp file `L.tmp-OWNER-RANDOM`, then made visible with
 * link(2) or rename(2), so a reader sees a complete record or none.
 *
 * Taking `L`:
 *  1. link(tmp, L). Success: held. EEXIST: read L's record X.
 *  2. X's owner alive (or on another host, unknown): wait and go to 1.
 *  3. X's owner dead: recover. Claims `L.break-X.nonce-0`, `-1`, ... are
 *     taken with link(tmp, claim): EEXIST on claim n whose owner is dead
 *     (a recoverer killed mid-recovery) moves on to claim n+1; a live
 *     owner: wait and go to 1. Having won a claim, re-read L: still X?
 *     rename(tmp, L) replaces it atomically: held. Not X: drop the claim, go
 *     to 1. After holding, remove every claim file (any nonce but ours).
 * Releasing: read L; if it is still our nonce, unlink it.
 *
 * Why two waiters can never both hold L. L changes only by (a) link when L
 * is absent (atomic: one winner), (b) unlink by its live owner (release),
 * (c) rename by a recoverer of record X. For (c), suppose two live
 * processes P and Q both win a claim for X and both re-read L == X, before
 * any replacement of X. No claim for X was removed yet (claims of X are only
 * removed once L != X, and nonces never repeat, so L never becomes X again).
 * Say P's claim is n and Q's is m > n: Q took claim m only after finding
 * claim n's owner dead, but claim n's owner is P, alive: contradiction. So
 * exactly one process replaces X, and while it is between its re-read and
 * the rename, L can change by none of (a) (L exists), (b) (X's owner is
 * dead) or (c) (no one else holds a valid claim). A claim removed and
 * re-created later (after L != X) is harmless: its winner's re-read sees
 * L != X. Liveness is judged by process-owner.ts; a pid reused by another
 * process is caught by the start time, and "dead" never becomes "alive".
 *
 * A crash leaves at most: L (recovered at once by the next taker), claim
 * files (removed by the next holder) and tmp files (swept by owner, see
 * temp-files.ts). A held lock is registered as a temp path, so an
 * interrupted CLI removes it at exit.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { abortError } from './abort.js';
import { OcistackError } from './errors.js';
import { currentOwner, ownerState, type ProcessOwner } from './process-owner.js';
import { removeTemp, sweepStaleTemps, tempName, trackTemp, untrackTemp } from './temp-files.js';

export interface LockRecord extends ProcessOwner {
  nonce: string;
  /** ISO time the lock was taken (for people reading the file). */
  taken: string;
}

export interface LockOptions {
  /** Give up after this long with CACHE_LOCKED (default 15 s). */
  waitMs?: number;
  /** Poll interval while another process holds the lock (default 25 ms). */
  pollMs?: number;
  signal?: AbortSignal;
  /** What the lock protects, for the error message. */
  what?: string;
}

export interface HeldLock {
  readonly file: string;
  readonly record: LockRecord;
  release(): Promise<void>;
}

async function readRecord(file: string): Promise<LockRecord | undefined | 'bad'> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const r = JSON.parse(text) as LockRecord;
    return typeof r.pid === 'number' && typeof r.nonce === 'string' ? r : 'bad';
  } catch {
    return 'bad';
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

/** Take the lock `file`, waiting while a live process holds it. */
export async function acquireLock(file: string, opts: LockOptions = {}): Promise<HeldLock> {
  const lock = path.resolve(file);
  const dir = path.dirname(lock);
  const base = path.basename(lock);
  await fsp.mkdir(dir, { recursive: true });
  await sweepStaleTemps(dir, (n) => n.startsWith(`${base}.tmp-`));
  const record: LockRecord = { ...currentOwner(), nonce: randomBytes(12).toString('hex'), taken: new Date().toISOString() };
  const tmp = path.join(dir, tempName(`${base}.tmp`));
  trackTemp(tmp);
  await fsp.writeFile(tmp, `${JSON.stringify(record)}\n`, { flag: 'wx' });
  const waitMs = opts.waitMs ?? 15_000;
  const pollMs = opts.pollMs ?? 25;
  const start = Date.now();
  let holder: LockRecord | 'bad' | undefined;
  try {
    for (;;) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      if (await tryTake(lock, tmp, record, (h) => (holder = h))) break;
      if (Date.now() - start > waitMs) throw lockedError(lock, holder, opts.what);
      await delay(pollMs, undefined, { signal: opts.signal }).catch(() => undefined);
    }
  } catch (e) {
    await removeTemp(tmp);
    throw e;
  }
  trackTemp(lock); // removed at exit if the process is interrupted while holding it
  await removeTemp(tmp);
  await removeClaims(dir, base, record.nonce);
  return {
    file: lock,
    record,
    release: async () => {
      const cur = await readRecord(lock).catch(() => undefined);
      if (cur && cur !== 'bad' && cur.nonce === record.nonce) await fsp.unlink(lock).catch(() => undefined);
      untrackTemp(lock);
    },
  };
}

/** One round of the protocol in the header; true when the lock is ours. */
async function tryTake(lock: string, tmp: string, me: LockRecord, seen: (h: LockRecord | 'bad') => void): Promise<boolean> {
  try {
    await fsp.link(tmp, lock);
    return true;
  } catch (e) {
    if (errno(e) !== 'EEXIST') throw e;
  }
  const cur = await readRecord(lock);
  if (cur === undefined) return false; // released meanwhile: try again now
  seen(cur);
  if (cur === 'bad' || ownerState(cur) !== 'dead') return false;
  for (let n = 0; ; n++) {
    const claim = `${lock}.break-${cur.nonce}-${n}`;
    try {
      await fsp.link(tmp, claim);
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw e;
      const other = await readRecord(claim);
      if (other === undefined) return false; // removed: L moved on; start over
      if (other !== 'bad' && other.nonce !== me.nonce && ownerState(other) === 'dead') continue;
      return false; // a live recoverer is at work
    }
    const again = await readRecord(lock);
    if (again && again !== 'bad' && again.nonce === cur.nonce) {
      await fsp.rename(tmp, lock);
      return true;
    }
    await fsp.unlink(claim).catch(() => undefined);
    return false;
  }
}

/** Claim files are garbage once L holds another nonce (nonces never repeat). */
async function removeClaims(dir: string, base: string, ownNonce: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  const prefix = `${base}.break-`;
  for (const n of names) {
    if (n.startsWith(prefix) && !n.startsWith(`${prefix}${ownNonce}-`)) await fsp.unlink(path.join(dir, n)).catch(() => undefined);
  }
}

function lockedError(lock: string, holder: LockRecord | 'bad' | undefined, what = 'the build cache'): OcistackError {
  const by =
    holder === undefined ? '' : holder === 'bad' ? ' (its owner record is unreadable)' : ` by process ${holder.pid} on ${holder.host}`;
  return new OcistackError(`${what} is locked${by}: ${lock}`, {
    code: 'CACHE_LOCKED',
    hint: `wait for the other ocistack to finish; if none is running${holder !== 'bad' && holder && holder.host !== currentOwner().host ? ` on ${holder.host}` : ''}, remove ${lock}`,
  });
}

/** Run `fn` holding the lock `file`. */
export async function withLock<T>(file: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const held = await acquireLock(file, opts);
  try {
    return await fn();
  } finally {
    await held.release();
  }
}
