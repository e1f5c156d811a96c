/**
 * Comparing two unpacked root file systems path by path, field by field:
 * type, mode, owner, size, content hash, link target, hard links (which
 * paths share an inode, not only the link count), device major/minor and
 * extended attributes (timestamps aside).
 *
 * A path's line, as listed in expected.txt files:
 *   `/p f 0644 0:0 size=N sha=HEX16 links=N [hardlinks=/a,/b] [xattrs=name:HEX16,...]`
 *   `/p d 0755 0:0 [xattrs=...]`
 *   `/p l 0:0 -> target [xattrs=...]`
 *   `/p c 0620 0:5 dev=MAJOR,MINOR` (b: block device), `/p p 0644 0:0` (FIFO), `/p s ...` (socket)
 * `hardlinks=` lists every path of the tree on the same inode (the path itself
 * included) when there is more than one.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Extended attributes of every path below `root` (symlinks not followed), read
 * with getfattr (package attr) since Node has no xattr API: path -> sorted
 * `name:sha256-prefix` entries.
 */
export function readXattrs(root: string): Map<string, string[]> {
  let out = '';
  try {
    out = execFileSync('getfattr', ['--absolute-names', '-h', '-R', '-d', '-m', '-', '-e', 'hex', root], {
      encoding: 'latin1',
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    // getfattr exits 1 when some file has no xattr support; its stdout is still complete.
    const err = e as { stdout?: string; code?: string };
    if (err.code === 'ENOENT') throw new Error('getfattr is not installed (apt-get install -y attr)');
    out = err.stdout ?? '';
  }
  const result = new Map<string, string[]>();
  let current: string | undefined;
  for (const line of out.split('\n')) {
    const file = /^# file: (.*)$/.exec(line);
    if (file) {
      // getfattr escapes unusual bytes in names as \ooo (and a backslash as \\).
      const bytes = Buffer.from(file[1]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))).replace(/\\\\/g, '\\'), 'latin1');
      current = '/' + path.relative(root, bytes.toString('utf8'));
      continue;
    }
    const attr = /^([^=]+)=0x([0-9a-f]*)$/.exec(line);
    if (attr && current) {
      const sha = createHash('sha256').update(Buffer.from(attr[2]!, 'hex')).digest('hex').slice(0, 16);
      if (!result.has(current)) result.set(current, []);
      result.get(current)!.push(`${attr[1]}:${sha}`);
    }
  }
  for (const list of result.values()) list.sort();
  return result;
}

/** Linux `major(3)`/`minor(3)` of a device number. */
function majorMinor(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major},${minor}`;
}

/** One line per path (see the header), keyed by path. */
export function listTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const xattrs = readXattrs(root);
  const inodes = new Map<string, string[]>();
  const fileOf = new Map<string, string>();
  const walk = (rel: string): void => {
    const abs = path.join(root, rel);
    for (const name of fs.readdirSync(abs).sort()) {
      const r = `${rel}/${name}`;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      const own = `${st.uid}:${st.gid}`;
      let line: string;
      if (st.isSymbolicLink()) line = `${r} l ${own} -> ${fs.readlinkSync(p)}`;
      else if (st.isDirectory()) line = `${r} d ${mode} ${own}`;
      else if (st.isFile()) {
        const sha = createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16);
        line = `${r} f ${mode} ${own} size=${st.size} sha=${sha} links=${st.nlink}`;
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          if (!inodes.has(key)) inodes.set(key, []);
          inodes.get(key)!.push(r);
          fileOf.set(r, key);
        }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const big = fs.lstatSync(p, { bigint: true });
        line = `${r} ${st.isCharacterDevice() ? 'c' : 'b'} ${mode} ${own} dev=${majorMinor(big.rdev)}`;
      } else if (st.isFIFO()) line = `${r} p ${mode} ${own}`;
      else if (st.isSocket()) line = `${r} s ${mode} ${own}`;
      else line = `${r} ? ${mode} ${own}`;
      out.set(r, line);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  for (const [r, key] of fileOf) {
    const group = inodes.get(key)!;
    if (group.length > 1) out.set(r, `${out.get(r)} hardlinks=${[...group].sort().join(',')}`);
  }
  for (const [r, list] of xattrs) {
    if (out.has(r)) out.set(r, `${out.get(r)} xattrs=${list.join(',')}`);
  }
  return out;
}

/** The fields of a line: `type`, `mode`, `owner`, `target` and every `key=value` (size, sha, links, hardlinks, dev, xattrs). */
export function fieldsOf(p: string, line: string): Map<string, string> {
  const f = new Map<string, string>();
  // Paths may hold spaces: cut the known path off first.
  const m = line.startsWith(`${p} `) ? /^(\S) (.*)$/.exec(line.slice(p.length + 1)) : null;
  if (!m) throw new Error(`not a tree line for ${p}: ${line}`);
  f.set('type', m[1]!);
  const rest = m[2]!;
  if (m[1] === 'l') {
    const own = /^(\S+) -> (.*?)(?: (xattrs=\S+))?$/.exec(rest)!;
    f.set('owner', own[1]!);
    f.set('target', own[2]!);
    if (own[3]) f.set('xattrs', own[3].slice('xattrs='.length));
    return f;
  }
  const parts = rest.split(' ');
  f.set('mode', parts[0]!);
  f.set('owner', parts[1]!);
  for (const kv of parts.slice(2)) {
    const i = kv.indexOf('=');
    f.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return f;
}

/** Lines of `b` that differ from `a`, and `- path` for paths of `a` missing from `b`. */
export function changes(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, line] of b) if (a.get(p) !== line) out.push(line);
  for (const p of a.keys()) if (!b.has(p)) out.push(`- ${p}`);
  return out.sort();
}

export interface TreeDifference {
  path: string;
  /** The fields that differ; `exists` when the path is missing on one side. */
  fields: string[];
  /** Both lines, for the failure message. */
  text: string;
}

/** Every path whose line differs between the two trees, with the fields that differ. */
export function compareTrees(ours: Map<string, string>, theirs: Map<string, string>): TreeDifference[] {
  const out: TreeDifference[] = [];
  const paths = [...new Set([...ours.keys(), ...theirs.keys()])].sort();
  for (const p of paths) {
    const a = ours.get(p);
    const b = theirs.get(p);
    if (a === b) continue;
    let fields: string[];
    if (a === undefined || b === undefined) fields = ['exists'];
    else {
      const fa = fieldsOf(p, a);
      const fb = fieldsOf(p, b);
      fields = [...new Set([...fa.keys(), ...fb.keys()])].filter((k) => fa.get(k) !== fb.get(k)).sort();
    }
    out.push({ path: p, fields, text: `${p} [${fields.join(',')}]\n    ocistack: ${a ?? '(missing)'}\n    buildah:  ${b ?? '(missing)'}` });
  }
  return out;
}

/**
 * Accepted differences of a fixture (differences.txt): one `PATH FIELD[,FIELD...]`
 * per line, `#` comments. A path's difference is accepted only when every
 * field that differs is listed for it.
 */
export function parseAccepted(text: string, file = 'differences.txt'): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\/\S*)\s+([a-z]+(?:,[a-z]+)*)$/.exec(line);
    if (!m) throw new Error(`${file}:${i + 1}: expected "PATH FIELD[,FIELD...]" (fields: type, mode, owner, size, sha, links, hardlinks, dev, xattrs, target, exists), got: ${line}`);
    out.set(m[1]!, new Set(m[2]!.split(',')));
  }
  return out;
}

/**
 * The differences not covered by `accepted`, plus one entry per accepted
 * path or field that did not differ (a stale acceptance hides nothing and
 * must go, so the list stays exact).
 */
export function unaccepted(diffs: TreeDifference[], accepted: Map<string, Set<string>>): string[] {
  const out: string[] = [];
  const seen = new Map<string, Set<string>>();
  for (const d of diffs) {
    const ok = accepted.get(d.path);
    seen.set(d.path, new Set(d.fields));
    const missing = d.fields.filter((f) => !ok?.has(f));
    if (missing.length) out.push(`${d.text}\n    not accepted: ${missing.join(',')}`);
  }
  for (const [p, fields] of accepted) {
    const got = seen.get(p);
    const stale = [...fields].filter((f) => !got?.has(f));
    if (stale.length) out.push(`${p}: accepted difference in ${stale.join(',')} does not occur; remove it from differences.txt`);
  }
  return out;
}
