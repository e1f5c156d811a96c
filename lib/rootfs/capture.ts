/**
 * Capture a RUN step's change from an overlay upper dir as layer entries.
 *
 * The upper dir of an overlay mount holds exactly what changed above the
 * lower dirs (with redirect_dir and metacopy off, as lib/executor/runc
 * mounts it): new and changed files with their full data and metadata, the
 * directories above them (copied up with the lower's metadata), deletions
 * as 0/0 character devices, and directories that replaced a lower one
 * marked with the xattr `trusted.overlay.opaque=y` (`user.overlay.opaque`
 * when mounted with `userxattr`, as an unprivileged user must). That maps one to one
 * onto an OCI layer: files, `.wh.NAME` whiteouts and `.wh..wh..opq`.
 *
 * Overlay's own bookkeeping xattrs (`trusted.overlay.*`, `user.overlay.*`) and SELinux labels
 * are not part of the change; other xattrs (security.capability of a
 * setcap'd file, user.*) are kept, read with one `getfattr` run for the
 * whole tree. Without getfattr (Debian package attr) xattrs are left out
 * and opaque directories cannot be seen: {@link CaptureResult.notes} says so.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { throwIfAborted } from '../abort.js';
import type { LayerEntry } from '../layer/types.js';

export interface CaptureOptions {
  /** The overlay upper dir (not mounted anywhere writable any more). */
  upper: string;
  /** Image paths left out with everything below them (`/proc`, `/etc/hosts`). */
  exclude?: readonly string[];
  signal?: AbortSignal;
  /** getfattr binary (default `getfattr` on PATH). */
  getfattr?: string;
}

export interface CaptureResult {
  entries: LayerEntry[];
  /** What could not be captured (no getfattr). */
  notes: string[];
}

/** The opaque marker: `trusted.` as root, `user.` with the `userxattr` mount option (unprivileged, in a user namespace). */
const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'];

function keepXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('user.overlay.') && name !== 'security.selinux';
}

/** getfattr's escaping of names: `\ooo` for odd bytes, `\\` for a backslash. */
function unescapeName(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (s[i] === '\\' && s[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else bytes.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeValue(v: string): string {
  if (v.startsWith('0x')) return Buffer.from(v.slice(2), 'hex').toString('latin1');
  if (v.startsWith('0s')) return Buffer.from(v.slice(2), 'base64').toString('latin1');
  return v.replace(/^"|"$/g, '');
}

/** `getfattr -d -e hex --absolute-names` output -> xattrs by absolute path (values as latin1 byte strings). */
export function parseGetfattr(text: string): Map<string, Record<string, string>> {
  const map = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = {};
      map.set(path.resolve(unescapeName(line.slice(8))), current);
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=');
      current[unescapeName(line.slice(0, eq))] = decodeValue(line.slice(eq + 1));
    }
  }
  return map;
}

/** All xattrs below `dir` by absolute path, from one `getfattr -R` run; undefined without getfattr. */
export function readXattrsTree(dir: string, getfattr = 'getfattr'): Promise<Map<string, Record<string, string>> | undefined> {
  return new Promise((resolve) => {
    const child = spawn(getfattr, ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('error', () => resolve(undefined));
    child.on('close', () => resolve(parseGetfattr(Buffer.concat(out).toString('utf8'))));
  });
}

function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  // Linux's dev_t encoding (as glibc's major()/minor()).
  const big = BigInt(rdev);
  const major = Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
  const minor = Number((big & 0xffn) | ((big >> 12n) & ~0xffn));
  return { devmajor: major, devminor: minor };
}

function excluded(imagePath: string, exclude: readonly string[]): boolean {
  return exclude.some((x) => imagePath === x || imagePath.startsWith(x.endsWith('/') ? x : `${x}/`));
}

/** The change in `upper` as layer entries (paths absolute in the image, unsorted). */
export async function captureOverlayUpper(opts: CaptureOptions): Promise<CaptureResult> {
  const upper = path.resolve(opts.upper);
  const exclude = (opts.exclude ?? []).map((x) => path.posix.normalize(x).replace(/\/+$/, '') || '/');
  const notes: string[] = [];
  const top = fs.readdirSync(upper);
  if (top.length === 0) return { entries: [], notes };
  const xattrs = await readXattrsTree(upper, opts.getfattr);
  if (!xattrs) notes.push('getfattr is not installed (Debian: apt-get install attr): xattrs and opaque directories of the change were not captured');
  const entries: LayerEntry[] = [];
  const byInode = new Map<number, LayerEntry[]>();

  const walk = (dirAbs: string, dirImage: string, names: string[]): void => {
    throwIfAborted(opts.signal);
    for (const name of names.sort()) {
      const abs = path.join(dirAbs, name);
      const image = dirImage === '/' ? `/${name}` : `${dirImage}/${name}`;
      if (excluded(image, exclude)) continue;
      const st = fs.lstatSync(abs);
      const attrs = xattrs?.get(abs) ?? {};
      const kept = Object.fromEntries(Object.entries(attrs).filter(([k]) => keepXattr(k)));
      const base = { path: image, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), ...(Object.keys(kept).length ? { xattrs: kept } : {}) };
      if (st.isCharacterDevice() && st.rdev === 0) {
        entries.push({ path: image, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0 });
      } else if (st.isDirectory()) {
        entries.push({ ...base, type: 'dir' });
        if (OPAQUE_XATTRS.some((x) => attrs[x] === 'y')) entries.push({ path: image, type: 'opaque', mode: 0, uid: 0, gid: 0, mtime: 0 });
        walk(abs, image, fs.readdirSync(abs));
      } else if (st.isFile()) {
        const e: LayerEntry = { ...base, type: 'file', size: st.size, content: () => fs.createReadStream(abs) };
        entries.push(e);
        if (st.nlink > 1) {
          const group = byInode.get(st.ino) ?? [];
          group.push(e);
          byInode.set(st.ino, group);
        }
      } else if (st.isSymbolicLink()) {
        entries.push({ ...base, type: 'symlink', linkTarget: fs.readlinkSync(abs) });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        entries.push({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', ...devNumbers(st.rdev) });
      } else if (st.isFIFO()) {
        entries.push({ ...base, type: 'fifo' });
      }
      // Sockets are not part of a layer (tar has no type for them).
    }
  };
  walk(upper, '/', top);

  // Hard links inside the change: the first path of a group carries the data, the others link to it.
  for (const group of byInode.values()) {
    if (group.length < 2) continue;
    const [first, ...rest] = group;
    for (const e of rest) {
      e.type = 'hardlink';
      e.linkTarget = first!.path;
      e.size = 0;
      e.content = undefined;
    }
  }
  return { entries, notes };
}
