/**
 * Stream the tar of one layer blob entry by entry, in order, for
 * extraction. It is the reader lib/layer uses (decompressFile for the
 * compression, PaxXattrTracker for the SCHILY.xattr records node-tar drops,
 * node-tar's Parser for the headers), with what extraction adds:
 *
 * - the handler runs synchronously and node-tar emits an entry only after
 *   the previous one ended, so entries are applied strictly in tar order
 *   (a directory before the files in it, a whiteout before what replaces it);
 * - a handler error stops the stream at once (nothing after it is applied);
 * - the uncompressed bytes are hashed, so the caller can check the diff_id
 *   the snapshot is keyed by;
 * - an AbortSignal stops the read with an `ABORTED` error.
 *
 * (lib/layer/layer-index.ts's scanLayer lets handlers run concurrently and
 * has no signal, which suits indexing but not applying.)
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { OcistackError } from '../errors.js';
import { interruptedError } from '../abort.js';
import type { BlobStore } from '../image/store.js';
import type { Digest } from '../image/types.js';
import { decompressFile, detectCompression, readHead } from '../layer/decompress.js';
import { PaxXattrTracker } from '../layer/pax.js';

/**
 * Applies one entry. Work done later for the same entry (in its `data` and
 * `end` listeners) must catch its own errors and pass them to `fail`, which
 * stops the read as a throw from the handler does.
 */
export type EntryHandler = (entry: ReadEntry, xattrs: Record<string, string> | undefined, fail: (e: unknown) => void) => void;

export interface ReadLayerOptions {
  signal?: AbortSignal;
}

/** Hashes the bytes passing through (the diff_id of an uncompressed tar). */
class Sha256Pass extends Transform {
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** ABORTED (lib/abort.ts), saying what was cut short. */
export function abortedError(what: string, cause?: unknown): OcistackError {
  const e = interruptedError(what);
  return cause === undefined ? e : new OcistackError(e.message, { code: e.code, hint: e.hint, cause });
}

/**
 * Read the layer `digest` from `store`, calling `onEntry` for each entry in
 * order. Returns the sha256 of the uncompressed tar (its diff_id). A
 * handler that throws fails the read with that error.
 */
export async function readLayerEntries(store: BlobStore, digest: Digest, onEntry: EntryHandler, opts: ReadLayerOptions = {}): Promise<Digest> {
  const file = store.path(digest);
  if (opts.signal?.aborted) throw abortedError(`applying layer ${digest}`);
  const head = await readHead(file, 8).catch((e: unknown) => {
    throw new OcistackError(`layer ${digest} is not in the blob store`, { code: 'LAYER_MISSING', hint: 'pull the base image again', cause: e });
  });
  const source = decompressFile(file, detectCompression(head), `layer ${digest}`);
  const hash = new Sha256Pass();
  const pax = new PaxXattrTracker();
  let failure: unknown;
  let corrupt: string | undefined;
  const fail = (e: unknown): void => {
    failure ??= e;
    // Stop reading now: nothing after a failed entry may be applied.
    source.destroy(e instanceof Error ? e : new Error(String(e)));
  };
  const parser = new Parser({
    // As scanLayer: tolerate the oddities real layers carry, fail on corruption.
    strict: false,
    onwarn: (code: string, message: string | Error) => {
      const text = typeof message === 'string' ? message : message.message;
      if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT' || /checksum/.test(text)) corrupt ??= text;
    },
    onReadEntry: (entry: ReadEntry) => {
      const xattrs = pax.take(entry);
      if (failure !== undefined || opts.signal?.aborted) {
        if (failure === undefined) fail(abortedError(`applying layer ${digest}`));
        entry.resume();
        return;
      }
      try {
        onEntry(entry, xattrs, fail);
      } catch (e) {
        fail(e);
      }
      if (!entry.listenerCount('data')) entry.resume();
    },
  });
  try {
    await pipeline(source, hash, pax.stream(), parser as unknown as NodeJS.WritableStream, { signal: opts.signal });
  } catch (e) {
    if (failure !== undefined) throw failure;
    if ((e as Error).name === 'AbortError' || opts.signal?.aborted) throw abortedError(`applying layer ${digest}`, e);
    if (e instanceof OcistackError) throw e;
    throw new OcistackError(`cannot read layer ${digest}: ${(e as Error).message}`, {
      code: 'LAYER_READ',
      hint: 'the cached layer is corrupt; remove it from the cache directory and pull again',
      cause: e,
    });
  }
  if (failure !== undefined) throw failure;
  if (corrupt) {
    throw new OcistackError(`cannot read layer ${digest}: ${corrupt}`, {
      code: 'LAYER_READ',
      hint: 'the cached layer is corrupt; remove it from the cache directory and pull again',
    });
  }
  return hash.digest();
}
