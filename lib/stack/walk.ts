/**
 * Files below a stack's directories. Symbolic links are never followed (a
 * link could lead out of the stack, or in a circle), and `node_modules` and
 * `.git` are skipped: they hold other projects' Dockerfiles and YAML, not the
 * stack's.
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';

const SKIP_DIRS = new Set(['node_modules', '.git']);

/** Regular files under each of `dirs` whose name passes `want`, absolute, sorted, each once. */
export async function walkFiles(dirs: string[], want: (name: string) => boolean): Promise<string[]> {
  const found = new Set<string>();
  const seen = new Set<string>();
  const visit = async (dir: string): Promise<void> => {
    if (seen.has(dir)) return;
    seen.add(dir);
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      // An unreadable directory below the stack is skipped, like `find` does; the top ones were checked by the caller.
      if ((e as NodeJS.ErrnoException).code === 'EACCES') return;
      throw e;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) await visit(p);
      } else if (e.isFile() && want(e.name)) {
        found.add(p);
      }
    }
  };
  for (const d of dirs) await visit(d);
  return [...found].sort();
}
