/**
 * The step's writable rootfs: an overlay mount of the snapshot (read-only
 * lower dir, shared by every step of the chain) under a per-step upper dir,
 * whose contents afterwards ARE the step's change (lib/rootfs/capture.ts).
 *
 * redirect_dir and metacopy are switched off explicitly: with them, a
 * renamed lower directory or a chmod'ed lower file would leave only a
 * reference to the lower dir in the upper dir instead of the data, and the
 * upper dir would no longer be a complete change.
 *
 * The lower dirs are the stub dir (absolute) and the chain's layer
 * snapshots, given relative to `cwd` (the layer snapshots' root) and
 * mounted with that cwd: the kernel resolves them at mount time, and short
 * names let more layers fit into the one page (4096 bytes, with its NUL)
 * the legacy mount(2) call takes for options. {@link overlayLowerBudget}
 * says how many characters are left for them.
 */
import { readFileSync } from 'node:fs';
import { OcistackError } from '../../errors.js';
import { runTool } from './tool.js';

export interface OverlayDirs {
  /** Lower dirs, top first (absolute, or relative to `cwd`). */
  lower: string[];
  /** The directory relative lower dirs are resolved from. */
  cwd?: string;
  upper: string;
  work: string;
  merged: string;
  /** Keep overlay's xattrs in `user.overlay.*` (required in a user namespace; rootless). */
  userxattr?: boolean;
}

/** Characters that would break overlay's comma/colon separated option string. */
const UNSAFE = /[,:\\\n]/;

export function overlayOptions(d: OverlayDirs): string {
  for (const p of [...d.lower, d.upper, d.work]) {
    if (UNSAFE.test(p)) {
      throw new OcistackError(`the path ${p} cannot be an overlay directory (it contains ',', ':' or '\\')`, {
        code: 'RUN_OVERLAY',
        hint: 'use a cache directory (--cache-dir / OCISTACK_CACHE_DIR) whose path has none of these characters',
      });
    }
  }
  // With userxattr the kernel refuses redirect_dir=off (it means "follow" there); nofollow creates none either.
  const redirect = d.userxattr ? 'nofollow,userxattr' : 'off';
  return `lowerdir=${d.lower.join(':')},upperdir=${d.upper},workdir=${d.work},metacopy=off,redirect_dir=${redirect}`;
}

/** mount(2) copies one page of options, the terminating NUL included. */
export const OVERLAY_OPTIONS_MAX = 4095;

/** Characters left in the options for more lower dirs after `d.lower` (the ':' before each included). */
export function overlayLowerBudget(d: OverlayDirs): number {
  return OVERLAY_OPTIONS_MAX - overlayOptions(d).length - 1;
}

export async function mountOverlay(d: OverlayDirs): Promise<void> {
  const options = overlayOptions(d);
  if (options.length > OVERLAY_OPTIONS_MAX) {
    throw new OcistackError(`the overlay mount options of the RUN step are ${options.length} characters, more than the ${OVERLAY_OPTIONS_MAX} the kernel takes`, {
      code: 'RUN_OVERLAY',
      hint: 'use a cache directory (--cache-dir / OCISTACK_CACHE_DIR) with a shorter path',
    });
  }
  const r = await runTool('mount', ['-t', 'overlay', 'overlay', '-o', options, d.merged], { cwd: d.cwd });
  if (r.code !== 0) {
    throw new OcistackError(`could not mount the overlay file system for the RUN step: ${r.stderr.trim() || `mount exited with ${r.code}`}`, {
      code: 'RUN_OVERLAY',
      hint: 'the runc executor needs root (or, later, a user namespace) and a kernel with overlayfs',
    });
  }
}

/** Unmount; a directory that is not mounted is fine. Lazy as a last resort, so a busy mount never stays behind. */
export async function unmountOverlay(merged: string): Promise<void> {
  const r = await runTool('umount', [merged]);
  if (r.code === 0 || !isMounted(merged)) return;
  await runTool('umount', ['-l', merged]);
}

/** Whether `dir` is a mount point now (from /proc/self/mountinfo). */
export function isMounted(dir: string): boolean {
  return mountPoints().includes(dir);
}

export function mountPoints(): string[] {
  // mountinfo field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  return readMountinfo()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}
