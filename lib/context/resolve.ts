/**
 * Symlink resolution scoped to a root: the root acts as `/`, `..` never climbs
 * above it, and absolute link targets restart from it (like chroot or
 * securejoin). Used for the build context and for image file systems so a
 * link can never lead a COPY outside of either.
 */
import { OcistackError } from '../errors.js';

/** Maximum symlinks followed in one resolution, as Linux's MAXSYMLINKS. */
const MAX_LINKS = 40;

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
  let pending = rel.split('/').filter((s) => s !== '' && s !== '.');
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = [...done, part].join('/');
    const isLast = pending.length === 0;
    if (isLast && !followFinal) {
      done.push(part);
      break;
    }
    const st = await fs.lstat(candidate);
    if (st && st.type === 'symlink') {
      if (++links > MAX_LINKS) {
        throw new OcistackError(`too many levels of symbolic links resolving "/${rel}"`, {
          code: 'SYMLINK_LOOP',
          hint: 'a symlink points (directly or indirectly) to itself; fix the link',
        });
      }
      const target = await fs.readlink(candidate, st);
      const targetParts = target.split('/').filter((s) => s !== '' && s !== '.');
      if (target.startsWith('/')) done.length = 0;
      pending = [...targetParts, ...pending];
      continue;
    }
    done.push(part);
  }
  return done.join('/');
}
