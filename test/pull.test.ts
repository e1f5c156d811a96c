/**
 * pullImage against real registries, with skopeo as the independent writer:
 * OCI and Docker v2s2 manifests, multi-platform indexes, corrupted blobs,
 * broken downloads resumed with Range, redirects to another host.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../lib/image/digest.js';
import { writeOciLayout } from '../lib/image/layout.js';
import { BlobStore } from '../lib/image/store.js';
import { MediaType, type ImageIndex } from '../lib/image/types.js';
import type { OcistackError } from '../lib/errors.js';
import { pullImage, pushImage, copyImage, type RegistryOptions } from '../lib/registry/index.js';
import { startHttpProxy } from './helpers/http-proxy.js';
import { inspectImage } from './helpers/images.js';
import { makeRandomImage } from './helpers/random-image.js';
import { skopeoArgs, startRegistry, withRegistry, type TestRegistry } from './helpers/registry.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';

const MiB = 1024 * 1024;
const toStop: { stop(): Promise<void> }[] = [];

function optsFor(reg: TestRegistry, extra: Partial<RegistryOptions> = {}): RegistryOptions {
  return { caFile: reg.caFile, credentials: reg.username ? { username: reg.username, password: reg.password! } : undefined, env: {}, ...extra };
}

function newStore(): BlobStore {
  return new BlobStore(join(makeTempDir('store'), 'cache'));
}

/** Make a random image, put it in an OCI layout and push it with skopeo (the independent writer). */
async function skopeoPushed(reg: TestRegistry, repoTag: string, sizes: number[], extraSkopeo: string[] = []) {
  const store = newStore();
  const img = await makeRandomImage(store, sizes);
  const dir = join(makeTempDir('layout'), 'l');
  await writeOciLayout({ dir, store, manifests: [{ descriptor: img.descriptor, tag: 'src' }] });
  const ref = `${reg.host}/${repoTag}`;
  await runOk(requireTool('skopeo'), ['copy', '--quiet', ...extraSkopeo, ...skopeoArgs(reg, 'dest'), `oci:${dir}:src`, `docker://${ref}`]);
  return { img, ref, dir };
}

test('pull an OCI image skopeo pushed (token auth): digests, config, layers verified in the store', async () => {
  const reg = await withRegistry('token');
  const { img, ref } = await skopeoPushed(reg, 'giteaadmin/pull-oci:1', [1 * MiB, 200_000, 10]);
  const store = newStore();
  const r = await pullImage({ ref, store, registry: optsFor(reg) });
  assert.is(r.manifestDigest, img.descriptor.digest, 'skopeo kept our OCI manifest byte for byte');
  assert.equal(r.config.rootfs.diff_ids, img.config.rootfs.diff_ids);
  for (const l of img.manifest.layers) {
    assert.ok(await store.has(l.digest));
    assert.is(await store.size(l.digest), l.size);
  }
  assert.equal(readdirSync(join(store.root, 'tmp')), [], 'no temp files left');
});

test('pull a Docker v2s2 image; pushing it back keeps the digest', async () => {
  const reg = await withRegistry('none');
  const { ref } = await skopeoPushed(reg, 'giteaadmin/pull-v2s2:1', [300_000], ['--format', 'v2s2']);
  const inspected = await inspectImage(ref, reg);
  assert.is(inspected.manifest.mediaType, MediaType.DockerManifest);
  const store = newStore();
  const r = await pullImage({ ref, store, registry: optsFor(reg) });
  assert.is(r.manifestDigest, inspected.digest);
  assert.is(r.manifestDescriptor.mediaType, MediaType.DockerManifest);
  const back = await pushImage({ store, manifest: r.manifestDescriptor, tags: [`${reg.host}/giteaadmin/pull-v2s2:copy`], registry: optsFor(reg) });
  assert.is(back.digest, inspected.digest);
  assert.is((await inspectImage(`${reg.host}/giteaadmin/pull-v2s2:copy`, reg)).manifest.mediaType, MediaType.DockerManifest);
});

test('multi-platform index: platform selection, and copy --all keeps the index', async () => {
  const reg = await withRegistry('none');
  const store = newStore();
  const amd = await makeRandomImage(store, [100_000], { arch: 'amd64' });
  const arm = await makeRandomImage(store, [100_000], { arch: 'arm64' });
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      { ...amd.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm.descriptor, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  };
  const put = await store.putBytes(canonicalJson(index));
  const indexDesc = { mediaType: MediaType.OciIndex, digest: put.digest, size: put.size };
  const dir = join(makeTempDir('layout'), 'multi');
  await writeOciLayout({ dir, store, manifests: [{ descriptor: indexDesc, tag: 'multi' }] });
  const ref = `${reg.host}/giteaadmin/multi:1`;
  await runOk(requireTool('skopeo'), ['copy', '--quiet', '--all', ...skopeoArgs(reg, 'dest'), `oci:${dir}:multi`, `docker://${ref}`]);

  const s1 = newStore();
  const a = await pullImage({ ref, store: s1, platform: 'linux/arm64', registry: optsFor(reg) });
  assert.is(a.manifestDigest, arm.descriptor.digest);
  assert.is(a.indexDigest, put.digest);
  assert.is(a.config.architecture, 'arm64');
  assert.not.ok(await s1.has(amd.manifest.layers[0]!.digest), 'other platforms are not downloaded');
  const b = await pullImage({ ref, store: s1, platform: 'linux/amd64', registry: optsFor(reg) });
  assert.is(b.manifestDigest, amd.descriptor.digest);
  try {
    await pullImage({ ref, store: s1, platform: 'linux/s390x', registry: optsFor(reg) });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OcistackError).code, 'NO_MATCHING_PLATFORM');
    assert.match((e as OcistackError).message, /linux\/amd64, linux\/arm64\/v8/);
  }

  const s2 = newStore();
  const c = await copyImage({ source: { transport: 'docker', ref }, destination: { transport: 'docker', ref: `${reg.host}/giteaadmin/multi-copy:1` }, store: s2, all: true, registry: optsFor(reg) });
  assert.is(c.digest, put.digest, 'the index is copied whole, same digest');
  const raw = JSON.parse(await runOk(requireTool('skopeo'), ['inspect', '--raw', ...['--cert-dir', reg.certDir], `docker://${reg.host}/giteaadmin/multi-copy:1`]));
  assert.is(raw.manifests.length, 2);
});

test('a blob whose bytes do not match its digest is rejected on pull, nothing stored', async () => {
  const reg = await startRegistry({ auth: 'none' });
  toStop.push(reg);
  const { img, ref } = await skopeoPushed(reg, 'giteaadmin/corrupt:1', [500_000]);
  const layer = img.manifest.layers[0]!;
  const hex = layer.digest.slice(7);
  const data = join(reg.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  assert.ok(existsSync(data), 'registry stores the blob where expected');
  const bytes = readFileSync(data);
  bytes[1000] = bytes[1000]! ^ 0xff; // same size, different content
  writeFileSync(data, bytes);
  const store = newStore();
  try {
    await pullImage({ ref, store, registry: optsFor(reg) });
    assert.unreachable('should fail');
  } catch (e) {
    const err = e as OcistackError;
    assert.is(err.code, 'DIGEST_MISMATCH', err.message);
    assert.is(err.registry, reg.host);
    assert.match(err.message, new RegExp(layer.digest));
  }
  assert.not.ok(await store.has(layer.digest), 'the bad blob is not in the store');
  assert.equal(readdirSync(join(store.root, 'tmp')), [], 'no partial file left');
});

test('a download broken mid-body resumes with Range', async () => {
  const reg = await startRegistry({ auth: 'none', tls: false });
  toStop.push(reg);
  const { img, ref } = await skopeoPushed(reg, 'giteaadmin/resume:1', [3 * MiB]);
  const proxy = await startHttpProxy({ upstream: reg.registryHost.replace('localhost', '127.0.0.1'), cutBlobAfterBytes: 1 * MiB, cutTimes: 1 });
  toStop.push(proxy);
  const viaProxy = ref.replace(reg.host, proxy.host);
  const store = newStore();
  const r = await pullImage({ ref: viaProxy, store, registry: { env: {}, plainHttpRegistries: [proxy.host], retry: { baseDelayMs: 50 } } });
  assert.is(r.manifestDigest, img.descriptor.digest);
  const layer = img.manifest.layers[0]!;
  const gets = proxy.seen.filter((s) => s.method === 'GET' && s.path.endsWith(layer.digest));
  assert.is(gets.length, 2, JSON.stringify(gets));
  assert.is(gets[0]!.range, undefined);
  const m = /^bytes=(\d+)-$/.exec(gets[1]!.range ?? '');
  assert.ok(m, `second request has a Range header (${gets[1]!.range})`);
  assert.ok(Number(m![1]) > 0 && Number(m![1]) <= 1 * MiB, `resumed from ${m![1]}`);
  assert.ok(await store.has(layer.digest));
});

test('blob redirects to another host are followed without Authorization', async () => {
  const reg = await startRegistry({ auth: 'htpasswd', tls: false });
  toStop.push(reg);
  const { img, ref } = await skopeoPushed(reg, 'giteaadmin/redirect:1', [200_000]);
  const basic = `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;
  const proxy = await startHttpProxy({ upstream: reg.registryHost.replace('localhost', '127.0.0.1'), redirectBlobs: true, upstreamAuthorization: basic });
  toStop.push(proxy);
  const store = newStore();
  const r = await pullImage({ ref: ref.replace(reg.host, proxy.host), store, registry: { env: {}, plainHttpRegistries: [proxy.host], credentials: { username: reg.username!, password: reg.password! } } });
  assert.is(r.manifestDigest, img.descriptor.digest);
  const mainBlobGets = proxy.seen.filter((s) => s.listener === 'main' && /blobs\/sha256/.test(s.path) && s.status === 307);
  assert.ok(mainBlobGets.length >= 2, 'blob GETs were redirected');
  assert.ok(mainBlobGets.every((s) => s.hadAuthorization), 'the registry itself got Authorization');
  const redirected = proxy.seen.filter((s) => s.listener === 'redirect');
  assert.ok(redirected.length >= 2, 'redirects followed');
  assert.ok(redirected.every((s) => !s.hadAuthorization), 'no Authorization sent to the other host');
});

test.after(async () => {
  for (const s of toStop) await s.stop().catch(() => undefined);
  for (const a of ['none', 'token'] as const) await (await withRegistry(a)).stop().catch(() => undefined);
});

test.run();
