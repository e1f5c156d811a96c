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
 */
function* walk(p: string, followFinal: boolean, where: string): Generator<string, string, string | undefined> {
  let pending = split(p);
  const done: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    if (pending.length === 0 && !followFinal) {
      done.push(part);
      break;
    }
    const target = yield [...done, part].join('/');
    if (target !== undefined) {
      if (++links > MAX_LINKS) {
        throw new OcistackError(`too many levels of symbolic links resolving ${where}`, {
          code: 'SYMLINK_LOOP',
          hint: 'a symlink points (directly or indirectly) to itself; fix the link',
        });
      }
      if (target.startsWith('/')) done.length = 0;
      pending = [...split(target), ...pending];
      continue;
    }
    done.push(part);
  }
  return done.join('/');
}

/** Synchronous driver: `linkTarget(rel)` is the target of a symlink at `rel`, else undefined. */
export function resolveInRootSync(p: string, followFinal: boolean, linkTarget: (rel: string) => string | undefined, where = p): string {
  const it = walk(p, followFinal, where);
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
