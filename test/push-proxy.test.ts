/**
 * Pushing through nginx (TLS reverse proxy, client_max_body_size 8m) like the
 * ingress in front of IDPBuilder's Gitea, with injected 502/503 faults, and
 * through a registry that is killed and restarted mid-push.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import { pushImage, type RegistryOptions } from '../lib/registry/index.js';
import { inspectImage } from './helpers/images.js';
import { makeRandomImage } from './helpers/random-image.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { makeTempDir } from './helpers/tools.js';
import { startHttpProxy } from './helpers/http-proxy.js';

const MiB = 1024 * 1024;
const started: TestRegistry[] = [];

function optsFor(reg: TestRegistry, extra: Partial<RegistryOptions> = {}, events?: ProgressEvent[]): RegistryOptions {
  return {
    caFile: reg.caFile,
    credentials: reg.username ? { username: reg.username, password: reg.password! } : undefined,
    env: {},
    onProgress: events ? (e) => events.push(e) : undefined,
    ...extra,
  };
}

function accessLog(reg: TestRegistry): string[] {
  return reg.proxy!.logs().split('--- nginx access.log\n')[1]!.split('\n').filter(Boolean);
}

/** A raw monolithic upload (POST + one PUT with the whole body), as a naive client does it. */
async function monolithicStatus(reg: TestRegistry, repo: string, body: Buffer): Promise<number> {
  const ca = readFileSync(reg.caFile);
  const auth: Record<string, string> = reg.username ? { Authorization: `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}` } : {};
  const post = await new Promise<{ status: number; location?: string }>((resolve, reject) => {
    const req = request(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', ca, headers: { 'Content-Length': '0', ...auth } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode!, location: res.headers.location });
    });
    req.on('error', reject);
    req.end();
  });
  assert.is(post.status, 202);
  const url = new URL(post.location!, reg.url);
  url.searchParams.set('digest', 'sha256:' + '0'.repeat(64));
  return new Promise<number>((resolve) => {
    const req = request(url, { method: 'PUT', ca, headers: { 'Content-Length': String(body.length), 'Content-Type': 'application/octet-stream', ...auth } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

test('a 50 MB layer pushes through nginx with an 8m body limit, chunked', async () => {
  const reg = await startRegistry({ auth: 'htpasswd', proxy: { maxBodySize: '8m' } });
  started.push(reg);
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const img = await makeRandomImage(store, [50 * MiB, 100_000]);
  // A monolithic upload of the layer is refused by the proxy.
  assert.is(await monolithicStatus(reg, 'giteaadmin/big', Buffer.alloc(20 * MiB)), 413);

  const events: ProgressEvent[] = [];
  const dest = `${reg.host}/giteaadmin/big:1`;
  const r = await pushImage({ store, manifest: img.descriptor, tags: [dest], registry: optsFor(reg, { chunkSize: 4 * MiB }, events) });
  assert.is(r.digest, img.descriptor.digest);
  const log = accessLog(reg);
  const patches = log.filter((l) => /"PATCH \/v2\/giteaadmin\/big\/blobs\/uploads\//.test(l) && /" 202 /.test(l));
  assert.ok(patches.length >= 13, `50 MB in 4 MiB chunks: ${patches.length} PATCH requests`);
  assert.not.ok(log.some((l) => /" 413 /.test(l) && /PATCH/.test(l)), 'no chunk was too large');
  const i = await inspectImage(dest, reg);
  assert.is(i.digest, img.descriptor.digest, 'skopeo reads the image');
  assert.equal(i.config.rootfs.diff_ids, img.config.rootfs.diff_ids);
});

test('default chunk size adapts to a proxy body limit (413 halves it)', async () => {
  const reg = started[0]!;
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const img = await makeRandomImage(store, [20 * MiB]);
  const events: ProgressEvent[] = [];
  const dest = `${reg.host}/giteaadmin/adaptive:1`;
  const r = await pushImage({ store, manifest: img.descriptor, tags: [dest], registry: optsFor(reg, {}, events) });
  assert.is(r.digest, img.descriptor.digest);
  assert.ok(events.some((e) => e.type === 'info' && /413/.test(e.message)), 'the 413 was seen and reported');
  assert.is((await inspectImage(dest, reg)).digest, img.descriptor.digest);
});

test('503/502 from the proxy are retried until the push succeeds', async () => {
  const reg = await startRegistry({ auth: 'none', proxy: { maxBodySize: '8m' } });
  started.push(reg);
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const img = await makeRandomImage(store, [3 * MiB, 1 * MiB]);
  await reg.proxy!.setFaults([
    { path: '^/v2/.+/blobs/uploads/', method: 'POST', status: 503 },
    { path: '^/v2/.+/manifests/', method: 'PUT', status: 502 },
  ]);
  const dest = `${reg.host}/giteaadmin/faulty:1`;
  const push = pushImage({ store, manifest: img.descriptor, tags: [dest], registry: optsFor(reg, { retry: { attempts: 8, baseDelayMs: 300, maxDelayMs: 2000 } }) });
  // Let some requests hit the faults, then heal the proxy.
  await new Promise((r) => setTimeout(r, 1200));
  const faultedSoFar = accessLog(reg).filter((l) => /" 503 /.test(l)).length;
  await reg.proxy!.setFaults([]);
  const r = await push;
  assert.ok(faultedSoFar >= 1, `requests got 503 before healing (${faultedSoFar})`);
  assert.is(r.digest, img.descriptor.digest);
  assert.is((await inspectImage(dest, reg)).digest, img.descriptor.digest);
});

test('a permanent 503 fails with a REGISTRY_HTTP error naming the registry', async () => {
  const reg = started[1]!;
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const img = await makeRandomImage(store, [100_000]);
  await reg.proxy!.setFaults([{ path: '^/v2/.+/manifests/', method: 'PUT', status: 503 }]);
  try {
    await pushImage({ store, manifest: img.descriptor, tags: [`${reg.host}/giteaadmin/never:1`], registry: optsFor(reg, { retry: { attempts: 3, baseDelayMs: 50 } }) });
    assert.unreachable('should fail');
  } catch (e) {
    const err = e as import('../lib/errors.js').OcistackError;
    assert.is(err.code, 'REGISTRY_HTTP', err.message);
    assert.is(err.registry, reg.host);
    assert.match(err.message, /503/);
  } finally {
    await reg.proxy!.setFaults([]);
  }
  // The tag was never written.
  const res = await fetchStatus(`${reg.url}/v2/giteaadmin/never/manifests/1`, reg.caFile);
  assert.is(res, 404);
});

function fetchStatus(url: string, caFile: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'HEAD', ca: readFileSync(caFile) }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
}

test('registry killed and restarted mid-push: the push completes with the right digest', async () => {
  const reg = await startRegistry({ auth: 'htpasswd' });
  started.push(reg);
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const img = await makeRandomImage(store, [12 * MiB, 12 * MiB, 12 * MiB, 2 * MiB]);
  const dest = `${reg.host}/giteaadmin/restarted:1`;
  let killed: Promise<void> | undefined;
  const push = pushImage({
    store,
    manifest: img.descriptor,
    tags: [dest],
    registry: optsFor(reg, { chunkSize: 2 * MiB, concurrency: 2 }, undefined),
  }).catch((e) => e as Error);
  // Kill once an upload is well under way (its data file on the registry's disk holds some MiB).
  const { readdirSync, statSync } = await import('node:fs');
  const uploads = join(reg.dataDir, 'docker', 'registry', 'v2', 'repositories', 'giteaadmin', 'restarted', '_uploads');
  const t0 = Date.now();
  const uploadedBytes = () => {
    let max = 0;
    try {
      for (const id of readdirSync(uploads)) {
        try {
          max = Math.max(max, statSync(join(uploads, id, 'data')).size);
        } catch {
          /* no data yet */
        }
      }
    } catch {
      /* no uploads yet */
    }
    return max;
  };
  while (Date.now() - t0 < 30_000 && uploadedBytes() < 3 * MiB) await new Promise((r) => setTimeout(r, 5));
  assert.ok(uploadedBytes() >= 3 * MiB, 'an upload was under way when the registry was killed');
  killed = reg.restart();
  await killed;
  const r = await push;
  if (r instanceof Error) throw r;
  assert.is(r.digest, img.descriptor.digest);
  const i = await inspectImage(dest, reg);
  assert.is(i.digest, img.descriptor.digest);
  assert.equal(i.config.rootfs.diff_ids, img.config.rootfs.diff_ids);
  // The interrupted upload was resumed: after the restart the client asked the registry where it stood.
  const afterRestart = reg.logs().split('--- docker-registry log')[1]!;
  assert.match(afterRestart, /method=GET[^\n]*uri="\/v2\/giteaadmin\/restarted\/blobs\/uploads\//, 'upload status asked after the restart');
});

test('a 401 in the middle of a chunked push (token expired): new token, same upload goes on', async () => {
  const reg = await startRegistry({ auth: 'token', tls: false });
  started.push(reg);
  const proxy = await startHttpProxy({ upstream: reg.registryHost.replace('localhost', '127.0.0.1'), unauthorize: { method: 'PATCH', nth: 3 } });
  started.push(proxy as unknown as TestRegistry);
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const img = await makeRandomImage(store, [6 * MiB]);
  const before = reg.token!.requests().length;
  const r = await pushImage({
    store,
    manifest: img.descriptor,
    tags: [`${proxy.host}/giteaadmin/reauth:1`],
    registry: { caFile: reg.caFile, env: {}, plainHttpRegistries: [proxy.host], chunkSize: 1 * MiB, credentials: { username: reg.username!, password: reg.password! } },
  });
  assert.is(r.digest, img.descriptor.digest);
  const patches = proxy.seen.filter((s) => s.method === 'PATCH');
  assert.is(patches[2]!.status, 401, 'the third PATCH was refused');
  assert.is(patches.filter((s) => s.status === 202).length, Math.ceil(img.manifest.layers[0]!.size / MiB), 'every 1 MiB chunk accepted once');
  const tokenReqs = reg.token!.requests().slice(before);
  const pushScope = tokenReqs.filter((t) => t.scopes.includes('repository:giteaadmin/reauth:pull,push'));
  assert.ok(pushScope.length >= 2, `a new token was fetched after the 401 (${pushScope.length} token requests for the scope)`);
  const direct = `${reg.host}/giteaadmin/reauth:1`;
  const { inspectImage: inspect } = await import('./helpers/images.js');
  assert.is((await inspect(direct, reg)).digest, img.descriptor.digest);
});

test.after(async () => {
  for (const r of started) await r.stop().catch(() => undefined);
});

test.run();
