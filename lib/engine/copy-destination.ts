/**
 * What COPY needs to know about the file system it writes into: which
 * entries exist there and where a path leads through its symlinks. The
 * stage's ImageFs answers for a normal COPY; `COPY --link` writes a layer
 * that must not depend on what is below it, so it asks an empty one.
 */
import { cleanPath } from '../context/ignore.js';
import type { ImageNode } from '../layer/image-fs.js';

export interface CopyDestination {
  /** The entry at `p` (absolute), parents resolved, the last component itself; undefined when missing. */
  lstat(p: string): ImageNode | undefined;
  /** The entry at `p` with every symlink followed. */
  stat(p: string): ImageNode | undefined;
  /** `p` resolved through symlinks with the image root as `/` (the last component too when `followFinal`). */
  resolve(p: string, followFinal?: boolean): string;
}

function rootNode(): ImageNode {
  return { path: '/', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, layer: -1, dataPath: '/', inode: '-1:/', children: new Map() };
}

function abs(p: string): string {
  const c = cleanPath(`/${p}`);
  return c === '.' ? '/' : c;
}

/** A destination with nothing in it but `/`: no symlinks, so every path resolves to itself. */
export const emptyDestination: CopyDestination = {
  lstat: (p) => (abs(p) === '/' ? rootNode() : undefined),
  stat: (p) => (abs(p) === '/' ? rootNode() : undefined),
  resolve: (p) => abs(p),
};
