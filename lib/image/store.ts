/**
 * Content-addressed blob store on disk, shared by pulls and builds.
 *
 * Layout: `<root>/blobs/sha256/<hex>` (the same as an OCI layout's blobs, so
 * copying out is a hard link or copy), and `<root>/tmp/` for writes in
 * progress. A blob becomes visible only by an atomic rename after its digest
 * was verified, so readers never see a partial or wrong blob.
 *
 * Temp files are named for their owner process and registered while they
 * exist (lib/temp-files.ts): an interrupted process removes its own, and
 * the first temp file a process makes in a store sweeps `<root>/tmp` (and
 * the layer index dir) of those whose owner is provably dead (kill -9). A store opened with a
 * `signal` refuses new writes once it is aborted and stops running ones.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { asAbortError, throwIfAborted } from '../abort.js';
import { OcistackError } from '../errors.js';
import { removeTemp, sweepStaleTemps, tempName, trackTemp, untrackTemp } from '../temp-files.js';
import { digestHex, sha256 } from './digest.js';
import type { Digest } from './types.js';

/** `$OCISTACK_CACHE_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/ocistack`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.OCISTACK_CACHE_DIR) return path.resolve(env.OCISTACK_CACHE_DIR);
  const xdg = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'ocistack');
}

/** Counts bytes and hashes them as they stream through. */
export class DigestCounter extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }
  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

export interface PutResult {
  digest: Digest;
  size: number;
}

export interface BlobStoreOptions {
  /** Abort every write of this store (and of the layers written into it). */
  signal?: AbortSignal;
}

/** Stores whose tmp dir this process has swept already (one readdir per store and process). */
const swept = new Set<string>();

export class BlobStore {
  readonly root: string;
  readonly signal?: AbortSignal;

  constructor(root: string = defaultCacheDir(), opts: BlobStoreOptions = {}) {
    this.root = path.resolve(root);
    this.signal = opts.signal;
  }

  /** Where the blob lives (whether or not it exists). */
  path(digest: Digest): string {
    return path.join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      await fsp.access(this.path(digest));
      return true;
    } catch {
      return false;
    }
  }

  async size(digest: Digest): Promise<number> {
    return (await fsp.stat(this.path(digest))).size;
  }

  /**
   * A fresh temp file path inside the store (same file system, so rename is
   * atomic), registered for removal on abort until {@link commitTemp} or
   * {@link discardTemp}.
   */
  async tempPath(prefix = 'blob'): Promise<string> {
    throwIfAborted(this.signal);
    const dir = path.join(this.root, 'tmp');
    await fsp.mkdir(dir, { recursive: true });
    if (!swept.has(dir)) {
      swept.add(dir);
      await sweepStaleTemps(dir);
      // Layer index writes (lib/layer/layer-index.ts) leave `<hex>.json.tmp-OWNER-*` when killed.
      await sweepStaleTemps(path.join(this.root, 'index', 'sha256'), (n) => n.includes('.json.tmp-'));
    }
    const p = path.join(dir, tempName(prefix));
    trackTemp(p);
    return p;
  }

  /** Remove a temp file made with {@link tempPath} (a failed or aborted write). */
  async discardTemp(tmp: string): Promise<void> {
    await removeTemp(tmp);
  }

  /**
   * Store the bytes of a stream. With `expected`, the digest (and `expectedSize`)
   * must match or nothing is stored and an error says so.
   */
  async putStream(
    source: NodeJS.ReadableStream | Readable | AsyncIterable<Uint8Array>,
    expected?: Digest,
    expectedSize?: number,
  ): Promise<PutResult> {
    const tmp = await this.tempPath();
    const counter = new DigestCounter();
    try {
      await pipeline(source as Readable, counter, createWriteStream(tmp, { mode: 0o644 }), { signal: this.signal }).catch((e: unknown) => {
        throw asAbortError(e, this.signal);
      });
      const digest = counter.digest();
      if (expected && digest !== expected) {
        throw new OcistackError(`blob digest mismatch: expected ${expected}, got ${digest}`, {
          code: 'DIGEST_MISMATCH',
          hint: 'the source served corrupted or different content; retry, or check the registry',
        });
      }
      if (expectedSize !== undefined && counter.size !== expectedSize) {
        throw new OcistackError(`blob ${digest} size mismatch: expected ${expectedSize} bytes, got ${counter.size}`, {
          code: 'DIGEST_MISMATCH',
          hint: 'the source served truncated content; retry',
        });
      }
      await this.commitTemp(tmp, digest);
      return { digest, size: counter.size };
    } catch (e) {
      await this.discardTemp(tmp);
      throw e;
    }
  }

  /** Store bytes held in memory (manifests, configs). */
  async putBytes(data: Uint8Array, expected?: Digest): Promise<PutResult> {
    const digest = sha256(data);
    if (expected && digest !== expected) {
      throw new OcistackError(`blob digest mismatch: expected ${expected}, got ${digest}`, {
        code: 'DIGEST_MISMATCH',
        hint: 'the source served corrupted or different content',
      });
    }
    if (!(await this.has(digest))) {
      const tmp = await this.tempPath();
      try {
        await fsp.writeFile(tmp, data, { mode: 0o644 });
        await this.commitTemp(tmp, digest);
      } catch (e) {
        await this.discardTemp(tmp);
        throw e;
      }
    }
    return { digest, size: data.length };
  }

  /**
   * Move a finished temp file (made with {@link tempPath}) into place under its
   * digest. The caller has verified the digest.
   */
  async commitTemp(tmp: string, digest: Digest): Promise<void> {
    const dest = this.path(digest);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.rename(tmp, dest);
    untrackTemp(tmp);
  }

  createReadStream(digest: Digest, start?: number): Readable {
    return createReadStream(this.path(digest), start ? { start } : undefined);
  }

  async readBytes(digest: Digest): Promise<Buffer> {
    return fsp.readFile(this.path(digest));
  }

  async readJson<T>(digest: Digest): Promise<T> {
    return JSON.parse((await this.readBytes(digest)).toString('utf8')) as T;
  }
}
