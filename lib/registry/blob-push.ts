/**
 * Uploading one blob from the store to a repository:
 *  - HEAD first, so blobs the registry has are skipped;
 *  - cross-repository mount when the blob is known in another repository of
 *    the same registry;
 *  - one monolithic PUT when the blob fits in a chunk, else PATCH chunks with
 *    `Content-Range` and a final PUT;
 *  - after a failure, resume from the offset the upload reports (GET on the
 *    upload URL), or start a new upload when the registry forgot it;
 *  - a 413 from a proxy halves the chunk size (down to 1 MiB) and goes on.
 */
import { createReadStream } from 'node:fs';
import { addAbortSignal, Transform } from 'node:stream';
import { abortError, throwIfAborted } from '../abort.js';
import { OcistackError } from '../errors.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor } from '../image/types.js';
import type { ProgressListener } from '../progress/events.js';
import { forgetBlob, knownBlobHome, rememberBlob } from './blob-homes.js';
import { InFlight } from './in-flight.js';
import { shortId } from './blob-pull.js';
import { networkError, responseError, type RegistryClient, type Response } from './client.js';
import { backoffDelay, isRetryableStatus, retryAfterMs, sleep } from './retry.js';

/** Default `--chunk-size`: 32 MiB. Blobs up to this size go in one PUT. */
export const DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024;
/** Chunks never shrink below this after 413 answers. */
export const MIN_CHUNK_SIZE = 1024 * 1024;
const PROGRESS_STEP = 1 << 20;

export interface BlobPushContext {
  client: RegistryClient;
  repository: string;
  store: BlobStore;
  progress: ProgressListener;
  /** Shared and shrunk by 413 answers, so later blobs start with a size that works. */
  chunk: { size: number };
  /** Stops the upload between requests and destroys a request body being sent. */
  signal?: AbortSignal;
}

/** Thrown inside an upload try to say "this try failed, retry/resume". */
class TransientUploadError extends Error {
  /** `restart`: do not resume this upload, start a new one. */
  constructor(readonly inner: unknown, readonly waitMs?: number, readonly restart = false) {
    super('transient upload failure');
  }
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.href;
}

/** Whether the repository already has the blob. */
export async function blobExists(client: RegistryClient, repository: string, desc: Descriptor): Promise<boolean> {
  const res = await client.request({ method: 'HEAD', url: `/v2/${repository}/blobs/${desc.digest}`, scopes: [`repository:${repository}:pull,push`] });
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw await responseError(client.registry, res, `cannot check blob ${desc.digest} in ${client.registry}/${repository}`);
}

/** Uploads in flight, by registry and digest (see in-flight.ts). */
const uploads = new InFlight();

/**
 * Push one blob (config or layer) unless the repository has it. While
 * another push in this process sends the same blob to the same registry
 * (another image of a stack, other repository), wait for it: then the blob
 * exists or is mounted from that repository instead of uploaded twice.
 */
export async function pushBlob(ctx: BlobPushContext, desc: Descriptor): Promise<void> {
  throwIfAborted(ctx.signal);
  return uploads.run(`${ctx.client.registry}\0${desc.digest}`, ctx.signal, () => pushBlobOnce(ctx, desc));
}

async function pushBlobOnce(ctx: BlobPushContext, desc: Descriptor): Promise<void> {
  const { client, repository, progress } = ctx;
  const id = shortId(desc.digest);
  const scopes = [`repository:${repository}:pull,push`];
  throwIfAborted(ctx.signal);
  if (await blobExists(client, repository, desc)) {
    progress({ type: 'blob', id, action: 'exists', digest: desc.digest, total: desc.size, current: desc.size, done: true });
    rememberBlob(client.registry, repository, desc.digest);
    return;
  }
  let location: string | undefined;
  const from = knownBlobHome(client.registry, desc.digest, repository);
  if (from) {
    const res = await client.request({
      method: 'POST',
      url: `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
      headers: { 'Content-Length': '0' },
      scopes: [...scopes, `repository:${from}:pull`],
    });
    await res.arrayBuffer().catch(() => undefined);
    if (res.status === 201) {
      progress({ type: 'blob', id, action: 'mount', digest: desc.digest, total: desc.size, current: desc.size, done: true });
      rememberBlob(client.registry, repository, desc.digest);
      return;
    }
    if (res.status === 202 && res.headers.get('location')) location = client.resolve(res.headers.get('location')!);
    else forgetBlob(client.registry, desc.digest);
  }
  await uploadBlob(ctx, desc, location);
  rememberBlob(client.registry, repository, desc.digest);
}

async function startUpload(ctx: BlobPushContext, desc: Descriptor): Promise<string> {
  const { client, repository } = ctx;
  const res = await client.request({ method: 'POST', url: `/v2/${repository}/blobs/uploads/`, headers: { 'Content-Length': '0' }, scopes: [`repository:${repository}:pull,push`] });
  await res.arrayBuffer().catch(() => undefined);
  const loc = res.headers.get('location');
  if (res.status !== 202 || !loc) {
    throw await responseError(client.registry, res, `cannot start upload of ${desc.digest} to ${client.registry}/${repository}`);
  }
  return client.resolve(loc);
}

/** Where an interrupted upload stands: next offset and URL, or undefined when the registry forgot it. */
async function uploadStatus(ctx: BlobPushContext, location: string): Promise<{ offset: number; location: string } | undefined> {
  try {
    const res = await ctx.client.request({ method: 'GET', url: location, scopes: [`repository:${ctx.repository}:pull,push`] });
    await res.arrayBuffer().catch(() => undefined);
    if (res.status !== 204 && res.status !== 200) return undefined;
    // distribution reports an empty upload as "0-0", the same as a 1-byte one: take "0-0" as empty;
    // should it hold one byte, the next PATCH gets 416 and the upload starts over.
    const m = /^(?:bytes=)?0-(\d+)$/.exec(res.headers.get('range') ?? '');
    const offset = m && m[1] !== '0' ? Number(m[1]) + 1 : 0;
    return { offset, location: ctx.client.resolve(res.headers.get('location') ?? location) };
  } catch {
    return undefined;
  }
}

/** Throw for an answer: transient ones are retried by the caller. */
async function judge(ctx: BlobPushContext, res: Response, what: string): Promise<never> {
  if (isRetryableStatus(res.status)) {
    await res.arrayBuffer().catch(() => undefined);
    throw new TransientUploadError(new Error(`HTTP ${res.status}`), retryAfterMs(res.headers.get('retry-after')));
  }
  throw await responseError(ctx.client.registry, res, what);
}

async function uploadBlob(ctx: BlobPushContext, desc: Descriptor, mountLocation?: string): Promise<void> {
  const { client, repository, store, progress } = ctx;
  const id = shortId(desc.digest);
  const scopes = [`repository:${repository}:pull,push`];
  const file = store.path(desc.digest);
  let sent = 0;
  let lastReported = -PROGRESS_STEP;
  const report = (done = false) => {
    if (done || sent - lastReported >= PROGRESS_STEP) {
      lastReported = sent;
      progress({ type: 'blob', id, action: 'push', digest: desc.digest, total: desc.size, current: sent, ...(done ? { done } : {}) });
    }
  };
  /** The bytes [start, end) of the blob, counted for progress as they go out. */
  const bodyFor = (start: number, end: number) => () => {
    sent = start;
    const count = new Transform({
      transform(chunk: Buffer, _e, cb) {
        sent += chunk.length;
        report();
        cb(null, chunk);
      },
    });
    if (end <= start) return Buffer.alloc(0);
    const body = createReadStream(file, { start, end: end - 1, highWaterMark: 1 << 20 }).pipe(count);
    return ctx.signal ? addAbortSignal(ctx.signal, body) : body;
  };
  const what = `cannot upload blob ${desc.digest} to ${client.registry}/${repository}`;

  let location = mountLocation;
  let offset = 0;
  let failures = 0;
  let stalled = 0;
  report();
  for (;;) {
    try {
      throwIfAborted(ctx.signal);
      location ??= await startUpload(ctx, desc);
      const chunkSize = ctx.chunk.size;
      if (offset === 0 && desc.size <= chunkSize) {
        const res = await client.request({
          method: 'PUT',
          url: withDigest(location, desc.digest),
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(desc.size) },
          body: bodyFor(0, desc.size),
          scopes,
          retry: false,
          what: `upload of blob ${desc.digest}`,
        });
        if (res.status === 413 && shrink(ctx)) {
          await res.arrayBuffer().catch(() => undefined);
          continue;
        }
        if (res.status !== 201) await judge(ctx, res, what);
        await checkDigestHeader(ctx, res, desc);
        break;
      }
      while (offset < desc.size) {
        throwIfAborted(ctx.signal);
        const end = Math.min(desc.size, offset + ctx.chunk.size);
        const res = await client.request({
          method: 'PATCH',
          url: location,
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - offset), 'Content-Range': `${offset}-${end - 1}` },
          body: bodyFor(offset, end),
          scopes,
          retry: false,
          what: `upload of blob ${desc.digest}`,
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.status === 413 && shrink(ctx)) continue;
        if (res.status === 416) throw new TransientUploadError(new Error('upload offset out of step'), 0, true);
        if (res.status !== 202) await judge(ctx, res, what);
        // 202 means the whole chunk was taken (its Range echo is ambiguous for 1-byte uploads).
        location = client.resolve(res.headers.get('location') ?? location);
        offset = end;
        failures = 0;
      }
      const res = await client.request({ method: 'PUT', url: withDigest(location, desc.digest), headers: { 'Content-Length': '0' }, scopes, retry: false });
      if (res.status !== 201) await judge(ctx, res, what);
      await checkDigestHeader(ctx, res, desc);
      break;
    } catch (e) {
      if (ctx.signal?.aborted) throw abortError(ctx.signal);
      // Broken or stalled connections are worth a resume; every other OcistackError is final.
      if (e instanceof OcistackError && e.code !== 'REGISTRY_UNREACHABLE' && e.code !== 'REGISTRY_TIMEOUT') throw e;
      failures++;
      if (failures >= client.retry.attempts) throw e instanceof TransientUploadError && e.inner instanceof Error && /^HTTP/.test(e.inner.message)
        ? new OcistackError(`${what}: ${e.inner.message} after ${failures} tries`, { code: 'REGISTRY_HTTP', registry: client.registry, hint: 'the registry or a proxy keeps failing; check its logs and retry' })
        : e instanceof OcistackError
          ? e
          : networkError(client.registry, e instanceof TransientUploadError ? e.inner : e);
      const wait = (e instanceof TransientUploadError ? e.waitMs : undefined) ?? backoffDelay(failures - 1, client.retry);
      await sleep(wait, client.signal);
      // Resume where the registry says the upload stands; a forgotten upload starts over.
      const restart = e instanceof TransientUploadError && e.restart;
      const status = location && !restart ? await uploadStatus(ctx, location).catch(() => undefined) : undefined;
      if (status && status.offset <= desc.size) {
        // A proxy with a body limit may cut the connection instead of answering 413. Two broken
        // requests in a row that moved nothing forward: try smaller requests.
        if (status.offset === offset && !(e instanceof TransientUploadError)) {
          stalled++;
          if (stalled >= 2 && shrink(ctx, 'broke two uploads in a row without progress')) stalled = 0;
        } else {
          stalled = 0;
        }
        location = status.location;
        offset = status.offset;
      } else {
        location = undefined;
        offset = 0;
      }
    }
  }
  sent = desc.size;
  report(true);
}

/** Halve the shared chunk size (after a 413, or uploads broken without progress); false when it cannot shrink further. */
function shrink(ctx: BlobPushContext, why = 'refused a request body as too large (413)'): boolean {
  if (ctx.chunk.size <= MIN_CHUNK_SIZE) return false;
  ctx.chunk.size = Math.max(MIN_CHUNK_SIZE, Math.floor(ctx.chunk.size / 2));
  ctx.progress({ type: 'info', message: `${ctx.client.registry} ${why}: chunk size now ${ctx.chunk.size} bytes` });
  return true;
}

async function checkDigestHeader(ctx: BlobPushContext, res: Response, desc: Descriptor): Promise<void> {
  await res.arrayBuffer().catch(() => undefined);
  const d = res.headers.get('docker-content-digest');
  if (d && d !== desc.digest) {
    throw new OcistackError(`registry stored blob ${desc.digest} as ${d}`, { code: 'DIGEST_MISMATCH', registry: ctx.client.registry, hint: 'the local blob store may be corrupted; clear the cache and rebuild' });
  }
}
