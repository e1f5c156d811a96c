/**
 * Temp files and directories of this process, and the sweep of those left
 * by processes that died.
 *
 * Every temp path ocistack creates (blob store writes, layers, OCI layouts
 * assembled beside their destination, --digest-file writes, index.json
 * replacements, held locks) is registered here while it exists, so an
 * interrupted CLI can remove whatever is still registered
 * ({@link removeRegisteredTemps}, or {@link removeRegisteredTempsSync} on a
 * second Ctrl-C and at process exit).
 *
 * After kill -9 nothing runs, so temp names carry their owner:
 * `PREFIX-PID-START-HOST-RANDOM` (pid, process start time, host tag; see
 * process-owner.ts). {@link sweepStaleTemps} removes entries of a directory
 * whose owner is provably dead by process-owner.ts's rule, or that were last
 * written before this host booted; entries of other hosts and of live
 * processes are left alone. Names from ocistack versions before this one
 * (`PREFIX-PID-RANDOM`) are judged by pid and boot time only.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { bootTimeMs, currentOwner, hostTag, ownerState } from './process-owner.js';

const registered = new Set<string>();

/** Remember a temp path (file or directory) until it is renamed into place or removed. */
export function trackTemp(p: string): void {
  registered.add(path.resolve(p));
}

/** Forget a temp path (it was renamed into place). */
export function untrackTemp(p: string): void {
  registered.delete(path.resolve(p));
}

/** Remove a temp path (recursively) and forget it. Never throws for a missing path. */
export async function removeTemp(p: string): Promise<void> {
  await fsp.rm(p, { recursive: true, force: true });
  untrackTemp(p);
}

/** The temp paths registered now. */
export function registeredTemps(): string[] {
  return [...registered];
}

/** Remove every registered temp path (after an abort, before exit). */
export async function removeRegisteredTemps(): Promise<void> {
  for (const p of [...registered]) await removeTemp(p).catch(() => undefined);
}

/** The same, synchronously: for a second Ctrl-C and the process 'exit' event. */
export function removeRegisteredTempsSync(): void {
  for (const p of [...registered]) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      /* best effort at exit */
    }
    registered.delete(p);
  }
}

/** `PID-START-HOST`: the owner part of temp names. */
export function ownerTag(): string {
  const me = currentOwner();
  return `${me.pid}-${me.start || '0'}-${hostTag(me.host)}`;
}

/** A fresh temp name `PREFIX-PID-START-HOST-RANDOM` (not registered: callers track the full path). */
export function tempName(prefix: string): string {
  return `${prefix}-${ownerTag()}-${randomBytes(6).toString('hex')}`;
}

const OWNED = /-(\d+)-(\d+)-([0-9a-f]{8})-[0-9a-f]{8,}$/;
const LEGACY = /^[a-z]+-(\d+)-[0-9a-f]{12}$/;

/**
 * Whether the owner encoded in a temp name is provably gone. `mtimeMs` is
 * the entry's; anything written before the last boot is dead.
 */
export function tempNameIsStale(name: string, mtimeMs: number): boolean {
  const bootSlackMs = 60_000; // uptime and clocks are not exact
  const m = OWNED.exec(name);
  if (m) {
    const [, pid, start, host] = m;
    const me = currentOwner();
    if (host !== hostTag(me.host)) return false; // another machine's: never ours to judge
    if (Number(pid) === me.pid && start === (me.start || '0')) return false; // ours, live
    if (mtimeMs < bootTimeMs() - bootSlackMs) return true;
    return ownerState({ pid: Number(pid), start: start === '0' ? '' : start!, host: me.host }) === 'dead';
  }
  const legacy = LEGACY.exec(name);
  if (legacy) {
    const pid = Number(legacy[1]);
    if (pid === process.pid) return false;
    return mtimeMs < bootTimeMs() - bootSlackMs || ownerState({ pid, start: '' }) === 'dead';
  }
  return false;
}

/**
 * Remove the entries of `dir` that `match` accepts and whose owner is
 * provably dead. One readdir; a missing directory is fine. Returns the
 * names removed.
 */
export async function sweepStaleTemps(dir: string, match: (name: string) => boolean = () => true): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!match(name)) continue;
    const p = path.join(dir, name);
    const st = await fsp.lstat(p).catch(() => undefined);
    if (!st || !tempNameIsStale(name, st.mtimeMs)) continue;
    await fsp.rm(p, { recursive: true, force: true }).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}
