/**
 * What Node's fs cannot do, done by Debian's tools as child processes:
 * device nodes and FIFOs (`mknod`, coreutils) and extended attributes
 * (`setfattr`, package attr). Paths passed here were resolved inside the
 * rootfs by the caller and name a fresh entry, never a symlink to follow.
 */
import { spawnSync } from 'node:child_process';
import { parseGetfattr } from './capture.js';

export interface ToolResult {
  ok: boolean;
  /** Why not, when not ok (stderr's first line, or "not installed"). */
  reason?: string;
  missing?: boolean;
}

function runTool(cmd: string, args: string[]): ToolResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return { ok: false, missing: code === 'ENOENT', reason: code === 'ENOENT' ? `${cmd} is not installed` : r.error.message };
  }
  if (r.status !== 0) return { ok: false, reason: (r.stderr ?? '').trim().split('\n')[0] || `${cmd} exited with ${r.status}` };
  return { ok: true };
}

/** `mknod -m 0600 PATH c|b MAJOR MINOR` (the mode is fixed afterwards by chmod). */
export function makeDevice(abs: string, kind: 'c' | 'b', major: number, minor: number): ToolResult {
  return runTool('mknod', ['-m', '0600', abs, kind, String(major), String(minor)]);
}

/** A FIFO; works without privileges. */
export function makeFifo(abs: string): ToolResult {
  return runTool('mknod', ['-m', '0600', abs, 'p']);
}

/**
 * Set one extended attribute without following a final symlink. `value` is a
 * byte string (one char per byte, latin1), as lib/layer/pax.ts reads it;
 * it goes to setfattr as hex so any byte survives.
 */
export function setXattr(abs: string, name: string, value: string): ToolResult {
  const args = ['-h', '-n', name];
  if (value.length > 0) args.push('-v', '0x' + Buffer.from(value, 'latin1').toString('hex'));
  args.push('--', abs);
  return runTool('setfattr', args);
}

/** Split `paths` into argument lists of at most ~64 KiB (far below ARG_MAX). */
function chunks(paths: readonly string[]): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let len = 0;
  for (const p of paths) {
    if (cur.length && len + p.length > 65536) {
      out.push(cur);
      cur = [];
      len = 0;
    }
    cur.push(p);
    len += p.length + 1;
  }
  if (cur.length) out.push(cur);
  return out;
}

/**
 * Overlay whiteouts (0/0 character devices, mode 0, as overlayfs makes
 * them) at fresh paths: one shell per 64 KiB of names, not a process per
 * whiteout. Linux lets any user make a whiteout (5.8+).
 */
export function makeWhiteouts(paths: readonly string[]): ToolResult {
  for (const list of chunks(paths)) {
    const r = runTool('sh', ['-c', 'for p in "$@"; do mknod -m 0 "$p" c 0 0 || exit 1; done', 'sh', ...list]);
    if (!r.ok) return r;
  }
  return { ok: true };
}

/** The xattrs of `paths` (final symlinks not followed) by absolute path, one getfattr per 64 KiB of names; undefined without getfattr. */
export function readXattrsOf(paths: readonly string[]): Map<string, Record<string, string>> | undefined {
  const all = new Map<string, Record<string, string>>();
  for (const list of chunks(paths)) {
    const r = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', ...list], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
    if (r.error) return undefined;
    for (const [k, v] of parseGetfattr(r.stdout ?? '')) all.set(k, v);
  }
  return all;
}
