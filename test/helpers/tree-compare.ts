/**
 * Describe an unpacked root file system path by path, to compare two
 * unpackers (ours and umoci): type, mode, owner, size, content hash,
 * symlink target, device numbers, hard-link group (the first path, in
 * sorted order, sharing the inode), xattrs (read with getfattr), and
 * optionally mtimes. Independent of lib/: it reads the tree with node:fs.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface DescribeOptions {
  /** Include mtimes (seconds). */
  mtimes?: boolean;
  /** Include xattrs (needs getfattr from the attr package). */
  xattrs?: boolean;
}

function typeOf(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'l';
  if (st.isDirectory()) return 'd';
  if (st.isFile()) return 'f';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  if (st.isSocket()) return 's';
  return '?';
}

/** `name=0xHEX` per xattr of each path under `root`, keyed by root-relative path (`/a/b`). */
function readXattrs(root: string): Map<string, string[]> {
  const r = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`getfattr failed: ${r.error.message} (install the attr package)`);
  const out = new Map<string, string[]>();
  let current: string | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = line.slice('# file: '.length);
      current = abs === root ? '/' : abs.slice(root.length);
      out.set(current, []);
    } else if (line && current !== undefined) out.get(current)!.push(line);
  }
  return out;
}

/** One line per path (root itself as `/`). */
export function describeTree(root: string, opts: DescribeOptions = {}): Map<string, string> {
  root = path.resolve(root);
  const stats = new Map<string, fs.Stats>();
  const walk = (rel: string): void => {
    const abs = rel === '/' ? root : path.join(root, rel);
    const st = fs.lstatSync(abs);
    stats.set(rel, st);
    if (st.isDirectory()) for (const n of fs.readdirSync(abs).sort()) walk(rel === '/' ? `/${n}` : `${rel}/${n}`);
  };
  walk('/');
  const groups = new Map<string, string>();
  for (const [rel, st] of [...stats].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (!st.isDirectory() && st.nlink > 1 && !groups.has(`${st.dev}:${st.ino}`)) groups.set(`${st.dev}:${st.ino}`, rel);
  }
  const xattrs = opts.xattrs ? readXattrs(root) : new Map<string, string[]>();
  const out = new Map<string, string>();
  for (const [rel, st] of stats) {
    const abs = rel === '/' ? root : path.join(root, rel);
    const t = typeOf(st);
    const parts = [rel, t, (st.mode & 0o7777).toString(8).padStart(4, '0'), `${st.uid}:${st.gid}`];
    if (t === 'f') parts.push(`size=${st.size}`, `sha=${createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 16)}`);
    if (t === 'l') parts.push(`-> ${fs.readlinkSync(abs)}`);
    if (t === 'c' || t === 'b') parts.push(`dev=${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`);
    const group = groups.get(`${st.dev}:${st.ino}`);
    if (group && !st.isDirectory()) parts.push(`link=${group}`);
    if (opts.mtimes) parts.push(`mtime=${Math.floor(st.mtimeMs / 1000)}`);
    const x = xattrs.get(rel);
    if (x?.length) parts.push(`xattrs=${x.sort().join(',')}`);
    out.set(rel, parts.join(' '));
  }
  return out;
}

/** Every path whose description differs, as `path\n  A: ...\n  B: ...`; empty when the trees match. */
export function diffTrees(a: Map<string, string>, b: Map<string, string>, names: [string, string] = ['ours', 'theirs']): string[] {
  const out: string[] = [];
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (a.get(p) !== b.get(p)) out.push(`${p}\n    ${names[0]}: ${a.get(p) ?? '(missing)'}\n    ${names[1]}: ${b.get(p) ?? '(missing)'}`);
  }
  return out;
}
