/**
 * Content digests of context files, for cache keys (issue 11).
 *
 * The contract the engine codes against: `fileDigest(rel)` is the sha256 of
 * a regular file's bytes. The real implementation keeps a stat cache per
 * context under the cache dir (path, size, mtime, ctime, inode, mode ->
 * digest), so an unchanged context is hashed by a stat walk alone; this
 * first version hashes every file it is asked about.
 */
import { createHash } from 'node:crypto';
import type { BuildContext } from './context.js';
import type { Digest } from '../image/types.js';

export interface ContentDigests {
  /** sha256 of the regular file `rel` (context-relative, normalised). */
  fileDigest(rel: string): Promise<Digest>;
  /** Keep what was learned for the next build (atomic; safe under two concurrent builds). */
  save(): Promise<void>;
}

export interface OpenContentDigestsOptions {
  context: BuildContext;
  /** The cache dir (BlobStore root); the stat cache lives below it. */
  cacheDir: string;
}

export async function openContentDigests(opts: OpenContentDigestsOptions): Promise<ContentDigests> {
  const { context } = opts;
  return {
    async fileDigest(rel: string): Promise<Digest> {
      const hash = createHash('sha256');
      for await (const chunk of context.source.open(rel)) hash.update(chunk as Buffer);
      return `sha256:${hash.digest('hex')}`;
    },
    async save(): Promise<void> {},
  };
}
