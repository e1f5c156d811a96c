/**
 * Who owns a temp file or a lock, and whether that owner is provably gone.
 *
 * An owner is a process: its pid, its start time (Linux: field 22 of
 * /proc/PID/stat, clock ticks since boot), the host name and the boot id
 * (/proc/sys/kernel/random/boot_id). The pid alone is not enough: after a
 * crash the pid may be given to an unrelated process, which would keep a
 * stale lock "alive" forever. The rule (used by lib/lock.ts and
 * lib/temp-files.ts):
 *
 *  - another host: unknown. We cannot see its processes, so its files are
 *    never removed (a cache on a shared file system stays safe);
 *  - same host, another boot id: dead (every process of that boot is gone);
 *  - `process.kill(pid, 0)` fails with ESRCH: dead;
 *  - the pid exists but started at another time than recorded: dead (the pid
 *    was reused);
 *  - otherwise alive (EPERM counts as alive: a process of another user).
 *
 * Where /proc is missing (not Linux) start time and boot id are empty and
 * only the pid check applies.
 *
 * Limit: processes in other pid namespaces (containers sharing one cache
 * volume and one host name) are invisible here, so their files could be
 * judged dead; give such containers their own host names or cache dirs.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';

export interface ProcessOwner {
  pid: number;
  /** Start time of the process (opaque string; '' when unknown). */
  start: string;
  host: string;
  /** Boot id of the host ('' when unknown). */
  boot: string;
}

export type OwnerState = 'alive' | 'dead' | 'unknown';

/** Start time of `pid` from /proc, or undefined when it cannot be read (process gone, or no /proc). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? undefined; // field 22; rest[0] is field 3
  } catch {
    return undefined;
  }
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

let self: ProcessOwner | undefined;

/** This process as an owner. */
export function currentOwner(): ProcessOwner {
  if (!self || self.pid !== process.pid) {
    self = { pid: process.pid, start: processStartTime(process.pid) ?? '', host: os.hostname(), boot: readBootId() };
  }
  return self;
}

/** Short tag of a host name, for file names (8 hex digits). */
export function hostTag(host: string): string {
  return createHash('sha256').update(host).digest('hex').slice(0, 8);
}

/** Whether the pid exists (EPERM: it exists, owned by another user). */
function pidExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Apply the rule of the header to an owner record. */
export function ownerState(owner: Pick<ProcessOwner, 'pid' | 'start'> & Partial<ProcessOwner>): OwnerState {
  const me = currentOwner();
  if (owner.host !== undefined && owner.host !== me.host) return 'unknown';
  if (owner.boot && me.boot && owner.boot !== me.boot) return 'dead';
  if (!pidExists(owner.pid)) return 'dead';
  if (owner.start) {
    const now = processStartTime(owner.pid);
    if (now !== undefined && now !== owner.start) return 'dead';
  }
  return 'alive';
}

/** The boot time of this host (ms since epoch), for "written before the last boot". */
export function bootTimeMs(): number {
  return Date.now() - os.uptime() * 1000;
}
