/**
 * Symlink resolution scoped to a root: the root acts as `/`, `..` never climbs
 * above it, and absolute link targets restart from it (like chroot or
 * securejoin), so a link can never lead outside. One algorithm for the build
 * context (async, node:fs) and image file systems (sync, an in-memory tree):
 * the walk is a generator that asks its driver for each component's link target.
 */
import { OcistackError } from './errors.js';

/** Maximum symlinks followed in one resolution, as Linux's MAXSYMLINKS. */
const MAX_LINKS = 40;

function split(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}

/**
 * Yields each root-relative path to look at; the driver answers with its
 * link target when it is a symlink, else undefined. Returns the real
 * root-relative path (no leading slash); missing components are kept.
 * `base` is an already resolved, symlink-free prefix to start from (a
 * driver's cache of its parent directory), so resolving each component of
 * a deep path in turn is not quadratic.
 *
 * Linear in the number of components: `pending` is a stack (next component
 * last) and the resolved prefix is kept as a string with the lengths it had,
 * so neither a step nor a `..` copies the whole path.
 */
function* walk(p: string, followFinal: boolean, where: string, base: readonly string[] = []): Generator<string, string, string | undefined> {
  const pending = split(p).reverse();
  let done = base.join('/');
  const lengths: number[] = [];
  for (let i = 0, n = 0; i < base.length; i++) {
    lengths.push(n);
    n += base[i]!.length + (i > 0 ? 1 : 0);
  }
  let links = 0;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === '..') {
      if (lengths.length > 0) done = done.slice(0, lengths.pop());
      continue;
    }
    const next = done === '' ? part : `${done}/${part}`;
    if (pending.length === 0 && !followFinal) {
      done = next;
      break;
    }
    const target = yield next;
    if (target !== undefined) {
      if (++links > MAX_LINKS) {
        throw new OcistackError(`too many levels of symbolic links resolving ${where}`, {
          code: 'SYMLINK_LOOP',
          hint: 'a symlink points (directly or indirectly) to itself; fix the link',
        });
      }
      if (target.startsWith('/')) {
        done = '';
        lengths.length = 0;
      }
      const t = split(target);
      for (let i = t.length - 1; i >= 0; i--) pending.push(t[i]!);
      continue;
    }
    lengths.push(done.length);
    done = next;
  }
  return done;
}

/** Synchronous driver: `linkTarget(rel)` is the target of a symlink at `rel`, else undefined. */
export function resolveInRootSync(p: string, followFinal: boolean, linkTarget: (rel: string) => string | undefined, where = p, base: readonly string[] = []): string {
  const it = walk(p, followFinal, where, base);
  let step = it.next();
  while (!step.done) step = it.next(linkTarget(step.value));
  return step.value;
}

/** Asynchronous driver, for lookups that do I/O. */
export async function resolveInRoot(p: string, followFinal: boolean, linkTarget: (rel: string) => Promise<string | undefined>, where = p): Promise<string> {
  const it = walk(p, followFinal, where);
  let step = it.next();
  while (!step.done) step = it.next(await linkTarget(step.value));
  return step.value;
}
