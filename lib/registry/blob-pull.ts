/**
 * Downloading one blob into the store: streamed to a temp file inside the
 * store, resumed with `Range` after a broken connection, verified by size and
 * digest, then renamed into place (no partial blob is ever visible).
 */
import { abortError, throwIfAborted } from '../abort.js';
import { OcistackError } from '../errors.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor } from '../image/types.js';
import type { ProgressListener } from '../progress/events.js';
import { openBlobSink } from './blob-sink.js';
import { networkError, responseError, type RegistryClient } from './client.js';
import { forEachChunk } from './http.js';
import { backoffDelay, sleep } from './retry.js';
import { InFlight } from './in-flight.js';

/** Emit a progress event at most every this many bytes. */
const PROGRESS_STEP = 1 << 20;

export function shortId(digest: string): string {
  return digest.slice(7, 19);
}

/** Downloads in flight, by store and digest (see in-flight.ts). */
const downloads = new InFlight();

/** Pull `desc` from `repository` into `store` unless it is already there (or another pull into the same store is fetching it: then after that one). */
export async function pullBlob(client: RegistryClient, repository: string, desc: Descriptor, store: BlobStore, progress: ProgressListener, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  return downloads.run(`${store.root}\0${desc.digest}`, signal, () => fetchBlob(client, repository, desc, store, progress, signal));
}

async function fetchBlob(client: RegistryClient, repository: string, desc: Descriptor, store: BlobStore, progress: ProgressListener, signal?: AbortSignal): Promise<void> {
  const id = shortId(desc.digest);
  if (await store.has(desc.digest)) {
    progress({ type: 'blob', id, action: 'exists', digest: desc.digest, total: desc.size, current: desc.size, done: true });
    return;
  }
  const tmp = await store.tempPath('pull');
  // Hashes and writes in arrival order.
  const sink = await openBlobSink(tmp);
  let lastReported = -PROGRESS_STEP;
  const report = (done = false) => {
    const written = sink.size;
    if (done || written - lastReported >= PROGRESS_STEP) {
      lastReported = written;
      progress({ type: 'blob', id, action: 'pull', digest: desc.digest, total: desc.size, current: written, ...(done ? { done } : {}) });
    }
  };
  report();
  try {
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(signal);
      const headers: Record<string, string> = {};
      if (sink.size > 0) headers.Range = `bytes=${sink.size}-`;
      const res = await client.request({ method: 'GET', url: `/v2/${repository}/blobs/${desc.digest}`, headers, scopes: [`repository:${repository}:pull`] });
      if (res.status === 200 && sink.size > 0) {
        // The server ignored Range: start over.
        await sink.reset();
      } else if (res.status === 206) {
        const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== sink.size) {
          await res.arrayBuffer().catch(() => undefined);
          await sink.reset();
          continue;
        }
      } else if (!res.ok) {
        throw await responseError(client.registry, res, `cannot get blob ${desc.digest} from ${client.registry}/${repository}`);
      }
      // Every byte that arrived intact is kept: after a broken connection the
      // sink already holds exactly the bytes before the break, so a retry
      // resumes with Range from its size without reading the file back.
      try {
        await forEachChunk(res.body, (chunk) => {
          // Observed per chunk, also while the request itself is not cut.
          if (signal?.aborted) throw abortError(signal);
          if (sink.size + chunk.length > desc.size) {
            throw new OcistackError(`blob ${desc.digest} is larger than its descriptor says (${desc.size} bytes)`, { code: 'DIGEST_MISMATCH', registry: client.registry, hint: 'the registry served different content; check the registry' });
          }
          const wait = sink.write(chunk);
          report();
          return wait;
        });
        break;
      } catch (e) {
        if (e instanceof OcistackError) throw e;
        throwIfAborted(signal);
        if (attempt + 1 >= client.retry.attempts) throw networkError(client.registry, e, { what: `download of blob ${desc.digest}`, tries: attempt + 1 });
        await sleep(backoffDelay(attempt, client.retry), signal ?? client.signal);
      }
    }
    const { digest, size: written } = await sink.finish();
    if (written !== desc.size || digest !== desc.digest) {
      throw new OcistackError(
        `blob from ${client.registry}/${repository} does not match its descriptor: expected ${desc.digest} (${desc.size} bytes), got ${digest} (${written} bytes)`,
        { code: 'DIGEST_MISMATCH', registry: client.registry, hint: 'the registry holds corrupted data for this blob; push the image again or repair the registry storage' },
      );
    }
    await store.commitTemp(tmp, desc.digest);
    report(true);
  } catch (e) {
    await sink.abort();
    await store.discardTemp(tmp);
    throw signal?.aborted ? abortError(signal) : e;
  }
}
