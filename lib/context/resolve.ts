/**
 * The build context's side of root-scoped symlink resolution (the algorithm
 * is lib/scoped-path.ts, shared with image file systems), over any file
 * system that can lstat and readlink.
 */
import { resolveInRoot } from '../scoped-path.js';

export interface ScopedFs<T extends { type: string }> {
  lstat(rel: string): Promise<T | undefined> | T | undefined;
  readlink(rel: string, st: T): Promise<string> | string;
}

/**
 * Resolve `rel` (slash-separated, relative to the root, '' = root) through
 * every symlink in its parents, and in its last component when `followFinal`.
 * Returns the real path relative to the root. Missing components are kept
 * as they are (the result may not exist).
 */
export async function resolveScoped<T extends { type: string }>(fs: ScopedFs<T>, rel: string, followFinal: boolean): Promise<string> {
  return resolveInRoot(
    rel,
    followFinal,
    async (candidate) => {
      const st = await fs.lstat(candidate);
      return st && st.type === 'symlink' ? fs.readlink(candidate, st) : undefined;
    },
    `"/${rel}"`,
  );
}
