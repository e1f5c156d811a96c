/**
 * RunMountSources made into host paths for one runc step (step-mounts.ts
 * binds them):
 *
 * - a chain: its rootfs snapshot (lib/rootfs ensureSnapshot, shared and
 *   read-only, the same one a RUN on that stage starts from), the path
 *   resolved inside it with the snapshot as `/`;
 * - the context: a copy of the listed entries in the step dir (reflinked
 *   where the file system can), owned by 0:0 with the files' modes and
 *   times, as BuildKit shows a local context. A copy rather than hard
 *   links: a hard link would show the host owner and share the inode with
 *   the developer's file.
 *
 * And copying a tree with owners, for seeding a cache dir (`cp -a`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError } from '../../errors.js';
import { ensureSnapshot } from '../../rootfs/index.js';
import { resolveInRootSync } from '../../scoped-path.js';
import type { ContextMountEntry, RunMountSource, RunRequest } from '../types.js';
import { runTool } from './tool.js';

export interface MaterialisedSource {
  /** Host path of the file or directory to mount. */
  path: string;
  isDir: boolean;
  /** True when `path` is this step's own copy (writes to it are discarded with the step dir). */
  own: boolean;
}

/** A chain source: the path in its snapshot (symlinks resolved inside it). */
export async function chainSourcePath(req: RunRequest, src: Extract<RunMountSource, { kind: 'chain' }>): Promise<MaterialisedSource> {
  const { chain } = src;
  const snap = await ensureSnapshot({ store: chain.store, layers: chain.layers, diffIds: chain.diffIds, cacheDir: req.cacheDir, signal: req.signal, onProgress: req.onProgress });
  const rel = resolveInRootSync(src.path, true, (r) => {
    const p = path.join(snap.rootfs, r);
    return fs.lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() ? fs.readlinkSync(p) : undefined;
  }, `${src.path} of the mount source`);
  const host = path.join(snap.rootfs, rel);
  const st = fs.statSync(host, { throwIfNoEntry: false });
  if (!st || (!st.isDirectory() && !st.isFile())) {
    throw new OcistackError(`RUN --mount source ${src.path} is not a file or directory of its stage`, { code: 'RUN_MOUNT_SOURCE', location: req.location, hint: 'mount a file or directory the stage has' });
  }
  return { path: host, isDir: st.isDirectory(), own: false };
}

/** A relative entry path the engine gave: no `..`, not absolute (the copy never writes outside `dest`). */
function safeRel(rel: string, req: RunRequest): string {
  if (rel.startsWith('/') || rel.split('/').some((s) => s === '..' || s === '.' || (s === '' && rel !== ''))) {
    throw new OcistackError(`a context mount entry "${rel}" is not a plain relative path`, { code: 'RUN_MOUNT_SOURCE', location: req.location, hint: 'this is a bug of the caller of the executor' });
  }
  return rel;
}

/** Copy the context entries into `dest` (which must not exist): 0:0, modes and times kept. */
export function copyContextEntries(req: RunRequest, src: Extract<RunMountSource, { kind: 'context' }>, dest: string): MaterialisedSource {
  const root = src.entries[0];
  if (!root || root.rel !== '' || root.type === 'symlink') {
    throw new OcistackError('a context mount lists no root entry', { code: 'RUN_MOUNT_SOURCE', location: req.location, hint: 'this is a bug of the caller of the executor' });
  }
  const dirs: [string, ContextMountEntry][] = [];
  for (const e of src.entries) {
    const rel = safeRel(e.rel, req);
    const from = rel ? path.join(src.root, rel) : src.root;
    const to = rel ? path.join(dest, rel) : dest;
    if (e.type === 'dir') {
      fs.mkdirSync(to, { mode: 0o700 });
      dirs.push([to, e]);
      continue;
    }
    if (e.type === 'symlink') fs.symlinkSync(e.linkTarget ?? '', to);
    else {
      // COPYFILE_EXCL: never through something already at `to`.
      fs.copyFileSync(from, to, fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL);
      fs.chmodSync(to, e.mode & 0o7777);
    }
    fs.lchownSync(to, 0, 0);
    fs.lutimesSync(to, e.mtime, e.mtime);
  }
  // Directories last, children before parents: making their entries changed their times.
  for (const [to, e] of dirs.reverse()) {
    fs.chownSync(to, 0, 0);
    fs.chmodSync(to, e.mode & 0o7777);
    fs.utimesSync(to, e.mtime, e.mtime);
  }
  return { path: dest, isDir: root.type === 'dir', own: true };
}

/** `cp -a` of `from` (a directory's contents, or a file) to `to`, owners, modes, times and xattrs kept. */
export async function copyTree(from: string, to: string, isDir: boolean, req: RunRequest): Promise<void> {
  const r = await runTool('cp', ['-a', '--reflink=auto', isDir ? `${from}/.` : from, to]);
  if (r.code !== 0) {
    throw new OcistackError(`could not copy the mount source: ${r.stderr.trim() || `cp exited with ${r.code}`}`, { code: 'RUN_MOUNT_SOURCE', location: req.location, hint: 'check the free space below the cache dir' });
  }
}
