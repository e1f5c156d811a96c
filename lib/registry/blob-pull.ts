/**
 * Downloading one blob into the store: streamed to a temp file inside the
 * store, resumed with `Range` after a broken connection, verified by size and
 * digest, then renamed into place (no partial blob is ever visible).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { OcistackError } from '../errors.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor } from '../image/types.js';
import type { ProgressListener } from '../progress/events.js';
import { networkError, responseError, type RegistryClient } from './client.js';
import { backoffDelay, sleep } from './retry.js';

/** Emit a progress event at most every this many bytes. */
const PROGRESS_STEP = 1 << 20;
/** Bytes gathered before one write to disk. */
const WRITE_BATCH = 1 << 20;

export function shortId(digest: string): string {
  return digest.slice(7, 19);
}

async function hashFile(file: string): Promise<{ hash: Hash; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch {
    /* no file yet */
  }
  return { hash, size };
}

/** Pull `desc` from `repository` into `store` unless it is already there. */
export async function pullBlob(client: RegistryClient, repository: string, desc: Descriptor, store: BlobStore, progress: ProgressListener): Promise<void> {
  const id = shortId(desc.digest);
  if (await store.has(desc.digest)) {
    progress({ type: 'blob', id, action: 'exists', digest: desc.digest, total: desc.size, current: desc.size, done: true });
    return;
  }
  const tmp = await store.tempPath('pull');
  let hash = createHash('sha256');
  let written = 0;
  let lastReported = -PROGRESS_STEP;
  const report = (done = false) => {
    if (done || written - lastReported >= PROGRESS_STEP) {
      lastReported = written;
      progress({ type: 'blob', id, action: 'pull', digest: desc.digest, total: desc.size, current: written, ...(done ? { done } : {}) });
    }
  };
  report();
  try {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {};
      if (written > 0) headers.Range = `bytes=${written}-`;
      const res = await client.request({ method: 'GET', url: `/v2/${repository}/blobs/${desc.digest}`, headers, scopes: [`repository:${repository}:pull`] });
      if (res.status === 200 && written > 0) {
        // The server ignored Range: start over.
        hash = createHash('sha256');
        written = 0;
        await fsp.truncate(tmp, 0).catch(() => undefined);
      } else if (res.status === 206) {
        const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== written) {
          await res.arrayBuffer().catch(() => undefined);
          hash = createHash('sha256');
          written = 0;
          await fsp.truncate(tmp, 0).catch(() => undefined);
          continue;
        }
      } else if (!res.ok) {
        throw await responseError(client.registry, res, `cannot get blob ${desc.digest} from ${client.registry}/${repository}`);
      }
      // Hash and count as bytes arrive; gather them into ~1 MiB vectored writes.
      try {
        const fh = await fsp.open(tmp, written > 0 ? 'a' : 'w');
        try {
          let batch: Buffer[] = [];
          let batchBytes = 0;
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            hash.update(chunk);
            written += chunk.length;
            if (written > desc.size) {
              throw new OcistackError(`blob ${desc.digest} is larger than its descriptor says (${desc.size} bytes)`, { code: 'DIGEST_MISMATCH', registry: client.registry, hint: 'the registry served different content; check the registry' });
            }
            report();
            batch.push(chunk);
            batchBytes += chunk.length;
            if (batchBytes >= WRITE_BATCH) {
              await fh.writev(batch);
              batch = [];
              batchBytes = 0;
            }
          }
          if (batchBytes) await fh.writev(batch);
        } finally {
          await fh.close();
        }
        break;
      } catch (e) {
        if (e instanceof OcistackError) throw e;
        if (attempt + 1 >= client.retry.attempts) throw networkError(client.registry, e);
        // Bytes counted may not all have reached the disk: resume from what the file holds.
        const state = await hashFile(tmp);
        hash = state.hash;
        written = state.size;
        await sleep(backoffDelay(attempt, client.retry));
      }
    }
    const digest = `sha256:${hash.digest('hex')}` as const;
    if (written !== desc.size || digest !== desc.digest) {
      throw new OcistackError(
        `blob from ${client.registry}/${repository} does not match its descriptor: expected ${desc.digest} (${desc.size} bytes), got ${digest} (${written} bytes)`,
        { code: 'DIGEST_MISMATCH', registry: client.registry, hint: 'the registry holds corrupted data for this blob; push the image again or repair the registry storage' },
      );
    }
    await store.commitTemp(tmp, desc.digest);
    report(true);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
