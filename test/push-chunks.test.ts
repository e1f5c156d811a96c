/**
 * The chunked push checked by what it sends, not only by its result:
 * docker-registry accepts a wrong `Content-Range` on middle chunks (it only
 * checks that the start matches the upload's size), so an off-by-one there
 * passes every end-to-end test. Here a recording proxy (test/helpers/http-proxy.ts)
 * sits between pushImage and a real docker-registry and every PATCH and PUT
 * of every upload is checked against the distribution spec:
 *  - each PATCH carries `Content-Range: <start>-<end>` (the first one may
 *    omit it; when present it starts at 0), inclusive end, the chunks
 *    contiguous from 0 to size-1;
 *  - `Content-Length` equals the chunk (end - start + 1) and the bytes that
 *    actually arrived, and they are the blob's bytes at that range;
 *  - the final PUT has `?digest=` equal to the blob's digest; a monolithic
 *    PUT carries the whole blob.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import type { Descriptor } from '../lib/image/types.js';
import { pushImage } from '../lib/registry/index.js';
import { inspectImage } from './helpers/images.js';
import { makeRandomImage } from './helpers/random-image.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startHttpProxy, type HttpProxy, type SeenRequest } from './helpers/http-proxy.js';
import { makeTempDir } from './helpers/tools.js';

const MiB = 1024 * 1024;
const stops: Array<() => Promise<void>> = [];

/** `/v2/<repo>/blobs/uploads/<uuid>` of an upload request, without its query. */
function uploadPath(r: SeenRequest): string | undefined {
  const path = r.path.split('?')[0]!;
  return /^\/v2\/.+\/blobs\/uploads\/[^/]+$/.test(path) ? path : undefined;
}

function queryDigest(r: SeenRequest): string | null {
  return new URL(r.path, 'http://x').searchParams.get('digest');
}

function sliceSha(bytes: Buffer, start: number, end: number): string {
  return createHash('sha256').update(bytes.subarray(start, end)).digest('hex');
}

/**
 * Checks every upload the proxy saw against the blobs of the image and
 * returns, per blob digest, how it went up ('monolithic' or the chunk count).
 * Throws with the first rule broken.
 */
function checkUploads(seen: SeenRequest[], blobs: Descriptor[], bytesOf: (blob: Descriptor) => Buffer): Map<string, 'monolithic' | number> {
  const byUpload = new Map<string, SeenRequest[]>();
  for (const r of seen) {
    const p = uploadPath(r);
    if (!p || (r.method !== 'PATCH' && r.method !== 'PUT')) continue;
    if (!byUpload.has(p)) byUpload.set(p, []);
    byUpload.get(p)!.push(r);
  }
  const result = new Map<string, 'monolithic' | number>();
  for (const [path, reqs] of byUpload) {
    for (const r of reqs) assert.ok(r.bodyDone, `${r.method} ${path}: body not finished`);
    const put = reqs.filter((r) => r.method === 'PUT' && r.status === 201);
    assert.is(put.length, 1, `${path}: exactly one successful final PUT`);
    const final = put[0]!;
    const digest = queryDigest(final);
    const blob = blobs.find((b) => b.digest === digest);
    assert.ok(blob, `${path}: the final PUT's digest parameter ${digest} is not a blob of the image`);
    const bytes = bytesOf(blob);
    assert.is(bytes.length, blob.size);
    const patches = reqs.filter((r) => r.method === 'PATCH' && r.status === 202);
    if (patches.length === 0) {
      // Monolithic: the whole blob in the PUT.
      assert.is(final.contentLength, String(blob.size), `${path}: monolithic PUT Content-Length`);
      assert.is(final.bodyBytes, blob.size, `${path}: monolithic PUT body`);
      assert.is(final.bodySha256, blob.digest.slice('sha256:'.length), `${path}: monolithic PUT bytes`);
      result.set(blob.digest, 'monolithic');
      continue;
    }
    let next = 0;
    for (const [i, p] of patches.entries()) {
      const where = `${path} PATCH #${i + 1} (Content-Range ${p.contentRange ?? '(none)'}, Content-Length ${p.contentLength})`;
      let start: number;
      let end: number;
      if (p.contentRange === undefined) {
        assert.is(i, 0, `${where}: only the first PATCH may omit Content-Range`);
        start = 0;
        end = p.bodyBytes - 1;
      } else {
        const m = /^(\d+)-(\d+)$/.exec(p.contentRange);
        assert.ok(m, `${where}: Content-Range must be "<start>-<end>"`);
        start = Number(m[1]);
        end = Number(m[2]);
      }
      assert.is(start, next, `${where}: chunks must be contiguous, this one must start at ${next}`);
      assert.ok(end >= start, `${where}: end before start`);
      assert.is(p.contentLength, String(end - start + 1), `${where}: Content-Length must be the chunk's length (inclusive end)`);
      assert.is(p.bodyBytes, end - start + 1, `${where}: bytes sent differ from the range`);
      assert.is(p.bodySha256, sliceSha(bytes, start, end + 1), `${where}: bytes are not the blob's bytes ${start}-${end}`);
      next = end + 1;
    }
    assert.is(next, blob.size, `${path}: the chunks cover ${next} of ${blob.size} bytes`);
    assert.ok(final.bodyBytes === 0 && (final.contentLength === undefined || final.contentLength === '0'), `${path}: the closing PUT after PATCHes carries no body here`);
    result.set(blob.digest, patches.length);
  }
  return result;
}

async function setup(): Promise<{ reg: TestRegistry; proxy: HttpProxy }> {
  const reg = await startRegistry({ auth: 'none', tls: false });
  stops.push(() => reg.stop());
  const proxy = await startHttpProxy({ upstream: reg.registryHost.replace('localhost', '127.0.0.1') });
  stops.push(() => proxy.stop());
  return { reg, proxy };
}

test('chunked push: contiguous inclusive Content-Range, Content-Length = chunk, final PUT digest', async () => {
  const { reg, proxy } = await setup();
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  // Sizes chosen so the last chunk is short and one blob is a whole number of chunks plus one byte.
  const img = await makeRandomImage(store, [Math.floor(3.5 * MiB), 2 * MiB, 50_000]);
  const blobs = [img.manifest.config, ...img.manifest.layers];
  const r = await pushImage({
    store,
    manifest: img.descriptor,
    tags: [`${proxy.host}/giteaadmin/chunks:1`],
    registry: { env: {}, plainHttpRegistries: [proxy.host], chunkSize: 1 * MiB },
  });
  assert.is(r.digest, img.descriptor.digest);
  const how = checkUploads(proxy.seen, blobs, (b) => readFileSync(store.path(b.digest)));
  for (const b of blobs) {
    const expected = b.size <= MiB ? 'monolithic' : Math.ceil(b.size / MiB);
    assert.is(how.get(b.digest), expected, `${b.digest} (${b.size} bytes) went up as ${how.get(b.digest)}`);
  }
  // The registry holds what the client meant.
  const i = await inspectImage(`${reg.host}/giteaadmin/chunks:1`, reg);
  assert.is(i.digest, img.descriptor.digest);
});

/** The message the checker failed with ('' when it passed); uvu's assert.throws rethrows assertion errors. */
function checkerError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

test('the checker catches an off-by-one Content-Range that docker-registry accepts', () => {
  // A recorded 3-byte blob in two PATCHes whose second range overlaps by one: what an
  // exclusive-end bug sends. The checker must refuse it (so the test above can fail).
  const bytes = Buffer.from('abc');
  const hex = createHash('sha256').update(bytes).digest('hex');
  const blob: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${hex}`, size: 3 };
  const bytesOf = () => bytes;
  const base = { listener: 'main' as const, hadAuthorization: false, bodyDone: true, status: 202 };
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const seen: SeenRequest[] = [
    { ...base, method: 'PATCH', path: '/v2/r/blobs/uploads/u1', contentRange: '0-2', contentLength: '2', bodyBytes: 2, bodySha256: sha('ab') },
    { ...base, method: 'PATCH', path: '/v2/r/blobs/uploads/u1?_state=x', contentRange: '2-3', contentLength: '1', bodyBytes: 1, bodySha256: sha('c') },
    { ...base, method: 'PUT', path: `/v2/r/blobs/uploads/u1?_state=y&digest=sha256:${hex}`, contentLength: '0', bodyBytes: 0, bodySha256: sha(''), status: 201 },
  ];
  assert.match(checkerError(() => checkUploads(seen, [blob], bytesOf)), /Content-Length must be the chunk's length/);
  seen[0] = { ...seen[0]!, contentRange: '0-1' };
  seen[1] = { ...seen[1]!, contentRange: '1-1' };
  assert.match(checkerError(() => checkUploads(seen, [blob], bytesOf)), /must start at 2/);
  seen[1] = { ...seen[1]!, contentRange: '2-2' };
  assert.equal([...checkUploads(seen, [blob], bytesOf)], [[blob.digest, 2]]);
  seen[2] = { ...seen[2]!, path: '/v2/r/blobs/uploads/u1?digest=sha256:' + '0'.repeat(64) };
  assert.match(checkerError(() => checkUploads(seen, [blob], bytesOf)), /digest parameter/);
});

test.after(async () => {
  for (const stop of stops) await stop().catch(() => undefined);
});

test.run();
