/**
 * The engine side of `RUN --mount` sources: what a `type=bind` mount shows
 * (and what seeds a `type=cache,from=` dir), as the executor contract's
 * RunMountSource, never as a host directory to mount.
 *
 * - the build context (no `from=`): the files below `source=` (default the
 *   context's root), .dockerignore applied (an ignored file is invisible,
 *   an ignored source is "not found"), symlinks in the source path resolved
 *   inside the context. Listed as entries: a remote executor packs them.
 * - a stage (name or index) or an image (`from=`): that file system's chain,
 *   with the source path resolved inside it.
 *
 * A `source=` that climbs out of its root (`../x`) is refused at the RUN
 * line. (BuildKit joins it to `/` instead, so `../x` silently means `/x`;
 * refusing says what is wrong rather than mounting something else.)
 */
import { OcistackError } from '../errors.js';
import type { SourceLocation } from '../errors.js';
import type { BuildContext } from '../context/context.js';
import type { ContextMountEntry, LayerChain, RunMountSource } from '../executor/types.js';
import type { ImageFs } from '../layer/image-fs.js';

/** A stage or image named by `from=`, as the engine has it. */
export interface MountStage {
  chain: LayerChain;
  fs: ImageFs;
}

/** How the engine finds mount sources for a RUN. */
export interface MountSources {
  context: BuildContext;
  /** The stage (name or index) or image reference of a `from=`, built or pulled. */
  stage(from: string): Promise<MountStage>;
}

function sourceError(message: string, location: SourceLocation, hint: string): OcistackError {
  return new OcistackError(message, { code: 'RUN_MOUNT_SOURCE', location, hint });
}

/**
 * `source=` as a path relative to its root ('' = the root). A leading `/`
 * means the root too. Throws when `..` climbs above the root.
 */
export function mountSourcePath(source: string, what: string, location: SourceLocation): string {
  const parts: string[] = [];
  for (const seg of source.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (!parts.length) {
        throw sourceError(`RUN --mount source=${source} is outside ${what}`, location, `name a path inside ${what} (source= is relative to its root)`);
      }
      parts.pop();
    } else parts.push(seg);
  }
  return parts.join('/');
}

/** The files of the context below `source`, as a context RunMountSource. */
export async function contextMountSource(context: BuildContext, source: string, location: SourceLocation): Promise<RunMountSource> {
  const rel = await context.resolve(mountSourcePath(source, 'the build context', location), true);
  const st = await context.lstat(rel);
  if (!st || (st.type !== 'dir' && st.type !== 'file')) {
    const why = st ? `is a ${st.type}` : context.excluded(rel) ? 'is excluded by .dockerignore' : 'does not exist';
    throw sourceError(`RUN --mount source=${source}: "${rel || '.'}" in the build context ${why}`, location, 'mount a file or directory of the context (not ignored by .dockerignore)');
  }
  const root = rel === '' ? context.dir : `${context.dir}/${rel}`;
  const entries: ContextMountEntry[] = [{ rel: '', type: st.type, mode: st.mode, size: st.size, mtime: st.mtime }];
  if (st.type === 'dir') {
    const cut = rel === '' ? 0 : rel.length + 1;
    for await (const e of context.walk(rel)) {
      const t = e.stat.type;
      if (t !== 'dir' && t !== 'file' && t !== 'symlink') continue; // walk already warned
      const entry: ContextMountEntry = { rel: e.rel.slice(cut), type: t, mode: e.stat.mode, size: e.stat.size, mtime: e.stat.mtime };
      if (t === 'symlink') entry.linkTarget = await context.source.readlink(e.rel);
      entries.push(entry);
    }
  }
  return { kind: 'context', root, entries };
}

/** `source` in a stage or image, as a chain RunMountSource. */
export function stageMountSource(stage: MountStage, from: string, source: string, location: SourceLocation): RunMountSource {
  const what = `"${from}"`;
  const p = stage.fs.resolve(`/${mountSourcePath(source, what, location)}`, true);
  const node = stage.fs.lstat(p);
  if (!node || (node.type !== 'dir' && node.type !== 'file')) {
    throw sourceError(`RUN --mount from=${from},source=${source}: ${p} ${node ? `is a ${node.type}` : 'does not exist'} in ${what}`, location, `mount a file or directory that ${what} has`);
  }
  return { kind: 'chain', chain: stage.chain, path: p };
}
