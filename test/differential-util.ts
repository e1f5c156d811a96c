/**
 * Comparing two unpacked root file systems path by path: type, mode, owner,
 * size, content hash, link target and hard-link count (timestamps aside).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One line per path: `/p f 0644 0:0 size=N sha=HEX16 links=N`, `/p d 0755 0:0`, `/p l 0777 0:0 -> target`. */
export function listTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const abs = path.join(root, rel);
    for (const name of fs.readdirSync(abs).sort()) {
      const r = `${rel}/${name}`;
      const p = path.join(root, r);
      const st = fs.lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      const own = `${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out.set(r, `${r} l ${own} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(r, `${r} d ${mode} ${own}`);
        walk(r);
      } else if (st.isFile()) {
        const sha = createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16);
        out.set(r, `${r} f ${mode} ${own} size=${st.size} sha=${sha} links=${st.nlink}`);
      } else out.set(r, `${r} ? ${mode} ${own}`);
    }
  };
  walk('');
  return out;
}

/** Lines of `b` that differ from `a`, and `- path` for paths of `a` missing from `b`. */
export function changes(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, line] of b) if (a.get(p) !== line) out.push(line);
  for (const p of a.keys()) if (!b.has(p)) out.push(`- ${p}`);
  return out.sort();
}

/** Every path whose line differs between the two trees, as `ocistack: ... | buildah: ...`. */
export function compareTrees(ours: Map<string, string>, theirs: Map<string, string>): string[] {
  const out: string[] = [];
  const paths = [...new Set([...ours.keys(), ...theirs.keys()])].sort();
  for (const p of paths) {
    const a = ours.get(p);
    const b = theirs.get(p);
    if (a !== b) out.push(`${p}\n    ocistack: ${a ?? '(missing)'}\n    buildah:  ${b ?? '(missing)'}`);
  }
  return out;
}
