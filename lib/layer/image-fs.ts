/**
 * A read-only view of an image's file system, merged from the header indexes
 * of its layers (OCI whiteouts and opaque directories applied). It answers
 * "what is at this path" with symlinks resolved inside the image root, and
 * reads file bytes from the layer that holds them, without extracting the
 * image.
 */
import { createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { OcistackError } from '../errors.js';
import { resolveInRootSync } from '../scoped-path.js';
import type { BlobStore } from '../image/store.js';
import type { Digest } from '../image/types.js';
import type { FileMeta } from './types.js';
import { indexLayer, normalizeTarPath, scanLayer, type IndexedEntry } from './layer-index.js';

export type ImageNodeType = 'file' | 'dir' | 'symlink' | 'other';

/** A path in the merged image. */
export interface ImageNode extends FileMeta {
  /** Absolute path (`/` for the root). */
  path: string;
  type: ImageNodeType;
  /** Index of the layer (in `ImageFs.layers`) whose tar holds this entry; -1 for implied directories. */
  layer: number;
  /** Path of the tar entry with the bytes (differs from `path` for hard links). */
  dataPath: string;
  /** Identity shared by hard-linked paths: `<layer>:<dataPath>`. */
  inode: string;
  /** Directories only. */
  children?: Map<string, ImageNode>;
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}

function impliedDir(p: string): ImageNode {
  return { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, layer: -1, dataPath: p, inode: `-1:${p}`, children: new Map() };
}

export class ImageFs {
  /** Layer digests, base first. */
  readonly layers: Digest[];
  readonly root: ImageNode;
  private readonly store: BlobStore;

  constructor(store: BlobStore, layers: Digest[], root: ImageNode) {
    this.store = store;
    this.layers = layers;
    this.root = root;
  }

  /**
   * Put one more layer on top, in place: what a build does after each COPY,
   * instead of re-reading every lower layer's index. Only for a view nobody
   * else holds (each stage owns its own).
   */
  async addLayer(digest: Digest): Promise<void> {
    const idx = await indexLayer(this.store, digest);
    applyLayer(this.root, idx.entries, this.layers.length);
    this.layers.push(digest);
    this.known.clear();
  }

  /**
   * Resolution steps done so far: child lookups in the tree and answers
   * given for a path. Deep paths must cost work linear in their depth, also
   * when every prefix is asked in turn; the tests check it with this count
   * rather than with a clock.
   */
  steps = 0;

  /** The node at `p` without following symlinks anywhere (raw tree lookup). */
  private raw(p: string): ImageNode | undefined {
    let node: ImageNode | undefined = this.root;
    for (const part of splitPath(p)) {
      if (!node || node.type !== 'dir') return undefined;
      this.steps++;
      node = node.children!.get(part);
    }
    return node;
  }

  /**
   * lstat answers so far, by path as asked (without `..`): the real path
   * (parents resolved, the last component not followed) and its node.
   * Callers resolve every prefix of a deep path in turn (COPY's parent
   * directories, WORKDIR); with this a prefix whose parent was seen costs one
   * lookup instead of a walk from the root (1,600 components took 16 s,
   * cubic in depth, before). Cleared when a layer is added.
   */
  private readonly known = new Map<string, { rel: string; node: ImageNode | undefined }>();

  private linkTarget = (rel: string): string | undefined => {
    const node = this.raw(`/${rel}`);
    return node?.type === 'symlink' ? node.linkTarget ?? '' : undefined;
  };

  /** Parents resolved, the last component itself. */
  private lstatEntry(p: string): { rel: string; node: ImageNode | undefined } {
    this.steps++;
    const parts = splitPath(p);
    if (parts.length === 0) return { rel: '', node: this.root };
    if (parts.includes('..')) {
      const rel = resolveInRootSync(p, false, this.linkTarget, `${p} in the image`);
      return { rel, node: this.raw(`/${rel}`) };
    }
    const key = parts.join('/');
    const seen = this.known.get(key);
    if (seen) return seen;
    const parent = parts.length === 1 ? { rel: '', node: this.root } : this.known.get(parts.slice(0, -1).join('/'));
    let r: { rel: string; node: ImageNode | undefined };
    if (parent && parent.node?.type !== 'symlink') {
      const last = parts[parts.length - 1]!;
      let node: ImageNode | undefined;
      if (parent.node?.type === 'dir') {
        this.steps++;
        node = parent.node.children!.get(last);
      }
      r = { rel: parent.rel === '' ? last : `${parent.rel}/${last}`, node };
    } else {
      const rel = resolveInRootSync(p, false, this.linkTarget, `${p} in the image`);
      r = { rel, node: this.raw(`/${rel}`) };
    }
    this.known.set(key, r);
    return r;
  }

  private resolveEntry(p: string, followFinal: boolean): { rel: string; node: ImageNode | undefined } {
    const r = this.lstatEntry(p);
    if (!followFinal || r.node?.type !== 'symlink') return r;
    // Follow the last link on from its (symlink-free) parent, as the walk would.
    const target = r.node.linkTarget ?? '';
    const cut = r.rel.lastIndexOf('/');
    // An absolute target starts again from the image root.
    const parent = cut < 0 || target.startsWith('/') ? [] : r.rel.slice(0, cut).split('/');
    const rel = resolveInRootSync(target, true, this.linkTarget, `${p} in the image`, parent);
    return { rel, node: this.raw(`/${rel}`) };
  }

  /**
   * Resolve `p` through symlinks in its parents (and its last component when
   * `followFinal`), with the image root as `/`. The result may not exist.
   */
  resolve(p: string, followFinal = true): string {
    return `/${this.resolveEntry(p, followFinal).rel}`;
  }

  /** The entry at `p`, parents resolved, the last component itself (a symlink stays a symlink). */
  lstat(p: string): ImageNode | undefined {
    return this.resolveEntry(p, false).node;
  }

  /** The entry at `p` with every symlink followed. */
  stat(p: string): ImageNode | undefined {
    return this.resolveEntry(p, true).node;
  }

  /** Names in a directory (symlinks followed), byte order. */
  readdir(p: string): string[] {
    const node = this.stat(p);
    if (!node || node.type !== 'dir') return [];
    return [...node.children!.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /** Bytes of a regular file (symlinks followed). */
  async readFile(p: string): Promise<Buffer> {
    const node = this.stat(p);
    if (!node || node.type !== 'file') {
      throw new OcistackError(`${p} is not a file in the image`, { code: 'IMAGE_PATH', hint: 'check the path exists in the image' });
    }
    if (node.size === 0) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    await scanLayer(this.store, this.layers[node.layer]!, async (entry) => {
      if (normalizeTarPath(entry.path) !== node.dataPath) return;
      entry.on('data', (c: Buffer) => chunks.push(c));
      await new Promise<void>((resolve, reject) => {
        entry.on('end', resolve);
        entry.on('error', reject);
      });
    });
    return Buffer.concat(chunks);
  }

  /** Like {@link readFile} but undefined when the file does not exist. */
  async readFileIfExists(p: string): Promise<Buffer | undefined> {
    const node = this.stat(p);
    if (!node || node.type !== 'file') return undefined;
    return this.readFile(p);
  }

  /**
   * Copy the bytes of many file nodes into `dir` with one pass over each
   * layer involved. Returns node.inode -> file in `dir`.
   */
  async extract(nodes: ImageNode[], dir: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const byLayer = new Map<number, Map<string, string>>();
    let n = 0;
    for (const node of nodes) {
      if (node.type !== 'file' || out.has(node.inode)) continue;
      const file = path.join(dir, `f${n++}`);
      out.set(node.inode, file);
      if (node.size === 0) {
        await fsp.writeFile(file, '');
        continue;
      }
      let m = byLayer.get(node.layer);
      if (!m) byLayer.set(node.layer, (m = new Map()));
      m.set(node.dataPath, file);
    }
    for (const [layer, wanted] of byLayer) {
      await scanLayer(this.store, this.layers[layer]!, async (entry) => {
        const file = wanted.get(normalizeTarPath(entry.path));
        if (!file) return;
        // A later entry with the same path replaces an earlier one within a layer.
        await pipeline(entry as unknown as NodeJS.ReadableStream, createWriteStream(file));
      });
    }
    return out;
  }
}

function lookupNode(root: ImageNode, p: string): ImageNode | undefined {
  let node: ImageNode | undefined = root;
  for (const part of splitPath(p)) {
    if (!node || node.type !== 'dir') return undefined;
    node = node.children!.get(part);
  }
  return node;
}

/** Apply one layer's index to the merged tree. */
function applyLayer(root: ImageNode, entries: IndexedEntry[], layer: number): void {
  const lookupParent = (p: string, create: boolean): ImageNode | undefined => {
    let node = root;
    const parts = splitPath(p);
    parts.pop();
    let cur = '';
    for (const part of parts) {
      cur += '/' + part;
      let child = node.children!.get(part);
      if (!child || child.type !== 'dir') {
        if (!create) return undefined;
        child = impliedDir(cur);
        node.children!.set(part, child);
      }
      node = child;
    }
    return node;
  };
  // Whiteouts hide lower layers only, so apply them before this layer's entries.
  for (const e of entries) {
    if (e.type === 'whiteout') {
      const parent = lookupParent(e.path, false);
      parent?.children!.delete(e.path.slice(e.path.lastIndexOf('/') + 1));
    } else if (e.type === 'opaque') {
      const dir = e.path === '/' ? root : lookupParent(e.path + '/x', false);
      if (dir?.type === 'dir') dir.children = new Map();
    }
  }
  const thisLayer = new Map<string, ImageNode>();
  for (const e of entries) {
    if (e.type === 'whiteout' || e.type === 'opaque') continue;
    if (e.path === '/') {
      if (e.type === 'dir') Object.assign(root, { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, layer, dataPath: '/', inode: `${layer}:/` });
      continue;
    }
    const parent = lookupParent(e.path, true)!;
    const name = e.path.slice(e.path.lastIndexOf('/') + 1);
    const existing = parent.children!.get(name);
    let node: ImageNode;
    if (e.type === 'hardlink') {
      const target = thisLayer.get(e.linkTarget ?? '') ?? lookupNode(root, e.linkTarget ?? '');
      node = {
        path: e.path,
        type: target?.type === 'file' ? 'file' : 'other',
        mode: target?.mode ?? e.mode,
        uid: target?.uid ?? e.uid,
        gid: target?.gid ?? e.gid,
        size: target?.size ?? 0,
        mtime: target?.mtime ?? e.mtime,
        layer: target ? target.layer : layer,
        dataPath: target?.dataPath ?? e.path,
        inode: target?.inode ?? `${layer}:${e.path}`,
      };
      // xattrs belong to the inode, which the link shares.
      if (target?.xattrs) node.xattrs = target.xattrs;
    } else {
      node = {
        path: e.path,
        type: e.type === 'file' || e.type === 'dir' || e.type === 'symlink' ? e.type : 'other',
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        size: e.size,
        mtime: e.mtime,
        layer,
        dataPath: e.path,
        inode: `${layer}:${e.path}`,
      };
      if (e.linkTarget !== undefined && e.type === 'symlink') node.linkTarget = e.linkTarget;
      if (e.xattrs) node.xattrs = e.xattrs;
      if (e.type === 'dir') node.children = existing?.type === 'dir' ? existing.children : new Map();
    }
    parent.children!.set(name, node);
    thisLayer.set(e.path, node);
  }
}

/**
 * Open the merged file system of `layerDigests` (base first). Layer indexes
 * are built on first use and cached in the store.
 */
export async function openImageFs(store: BlobStore, layerDigests: Digest[]): Promise<ImageFs> {
  const root = impliedDir('/');
  for (let i = 0; i < layerDigests.length; i++) {
    const idx = await indexLayer(store, layerDigests[i]!);
    applyLayer(root, idx.entries, i);
  }
  return new ImageFs(store, [...layerDigests], root);
}
