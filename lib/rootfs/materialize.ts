/**
 * Materialise an image's layer chain into a directory: the root file system
 * a local executor runs a RUN step in. Layers are applied base first by
 * {@link LayerApplier} (whiteouts, opaque directories, modes, owners, times,
 * links, xattrs, devices; nothing written outside `dest`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor, Digest } from '../image/types.js';
import type { ProgressListener } from '../progress/events.js';
import { LayerApplier } from './apply-layer.js';
import { readLayerEntries } from './read-layer.js';
import { RootfsWarnings, type RootfsWarning } from './warnings.js';

export interface MaterializeOptions {
  store: BlobStore;
  /** The image's layers, base first (manifest order). gzip or uncompressed tar (zstd/bzip2/xz via their tools). */
  layers: readonly Descriptor[];
  /** Directory to fill: created when missing, must be empty otherwise. */
  dest: string;
  /** The config's rootfs.diff_ids, same order: each layer's uncompressed digest is checked against it. */
  diffIds?: readonly Digest[];
  signal?: AbortSignal;
  /** Warnings (owners/devices/xattrs that could not be reproduced) go here as `warning` events, once per kind. */
  onProgress?: ProgressListener;
  /**
   * Whether ids can be set and device nodes made. Default: running as uid 0
   * (which includes root inside a user namespace, where ids outside its
   * mapping are reported as a warning).
   */
  privileged?: boolean;
}

export interface MaterializeResult {
  dest: string;
  /** Each layer's uncompressed digest, as read. */
  diffIds: Digest[];
  warnings: RootfsWarning[];
}

function emptyOrMissing(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
}

/**
 * Apply `layers` into `dest`. On failure `dest` is left as far as it got;
 * callers that need all-or-nothing materialise into a temp dir (see
 * snapshot.ts).
 */
export async function materializeChain(opts: MaterializeOptions): Promise<MaterializeResult> {
  const dest = path.resolve(opts.dest);
  if (opts.diffIds && opts.diffIds.length !== opts.layers.length) {
    throw new OcistackError(`the image has ${opts.layers.length} layers but ${opts.diffIds.length} diff_ids`, {
      code: 'ROOTFS_DIFF_ID_MISMATCH',
      hint: 'the image config does not match its manifest; rebuild or pull the image again',
    });
  }
  if (!emptyOrMissing(dest)) {
    throw new OcistackError(`cannot materialise a rootfs into ${dest}: the directory is not empty`, {
      code: 'ROOTFS_DEST_NOT_EMPTY',
      hint: 'use a new directory',
    });
  }
  fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
  const warnings = new RootfsWarnings(opts.onProgress);
  const ctx = { dest, privileged: opts.privileged ?? process.getuid?.() === 0, warnings };
  const diffIds: Digest[] = [];
  for (const [i, layer] of opts.layers.entries()) {
    const applier = new LayerApplier(ctx, layer.digest);
    let ok = false;
    let diffId: Digest;
    try {
      diffId = await readLayerEntries(opts.store, layer.digest, (entry, xattrs, fail) => applier.apply(entry, xattrs, fail), { signal: opts.signal });
      ok = true;
    } finally {
      applier.finish(ok);
    }
    const expected = opts.diffIds?.[i];
    if (expected && expected !== diffId) {
      throw new OcistackError(`layer ${layer.digest} has diff_id ${diffId}, but the image config says ${expected}`, {
        code: 'ROOTFS_DIFF_ID_MISMATCH',
        hint: 'the image config does not match its layers; rebuild or pull the image again',
      });
    }
    diffIds.push(diffId);
  }
  return { dest, diffIds, warnings: warnings.list() };
}
