/**
 * pullImage / pushImage against real docker-registry instances over TLS with
 * the IDPBuilder-like certificate: anonymous, htpasswd (Basic) and a
 * Gitea-like token issuer. skopeo pushes the base image and reads back
 * everything ocistack pushes.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import { pullImage, pushImage, type RegistryOptions } from '../lib/registry/index.js';
import { busyboxBase, inspectImage, runImage } from './helpers/images.js';
import { withRegistry, type TestRegistry, type RegistryAuth } from './helpers/registry.js';
import { makeTempDir } from './helpers/tools.js';
import { makeRandomImage } from './helpers/random-image.js';

function optsFor(reg: TestRegistry, events?: ProgressEvent[]): RegistryOptions {
  return {
    caFile: reg.caFile,
    credentials: reg.username ? { username: reg.username, password: reg.password! } : undefined,
    env: {},
    onProgress: events ? (e) => events.push(e) : undefined,
  };
}

for (const auth of ['none', 'htpasswd', 'token'] as RegistryAuth[]) {
  test(`pull then push round trip, auth=${auth}`, async () => {
    const reg = await withRegistry(auth);
    const base = await busyboxBase(reg, 'giteaadmin/busybox', 'latest');
    const inspected = await inspectImage(base, reg);
    const store = new BlobStore(join(makeTempDir('store'), 'cache'));
    const events: ProgressEvent[] = [];

    const pulled = await pullImage({ ref: base, store, registry: optsFor(reg, events) });
    assert.is(pulled.manifestDigest, inspected.digest, 'manifest digest is what skopeo sees');
    assert.is(pulled.config.architecture, inspected.config.architecture);
    assert.equal(pulled.config.config?.Cmd, ['sh']);
    for (const d of [pulled.configDescriptor, ...pulled.manifest.layers]) assert.ok(await store.has(d.digest), `${d.digest} in store`);
    assert.ok(await store.has(pulled.manifestDigest), 'manifest bytes kept in store');
    assert.ok(events.some((e) => e.type === 'blob' && e.action === 'pull' && e.done), 'blob progress events');
    if (auth !== 'none') assert.ok(events.some((e) => e.type === 'info' && /credentials for .*: --creds/.test(e.message)), 'credential source reported');
    assert.not.ok(reg.password && JSON.stringify(events).includes(reg.password), 'password never in events');

    const dest1 = `${reg.host}/giteaadmin/copy-${auth}:1`;
    const dest2 = `${reg.host}/giteaadmin/copy-${auth}:two`;
    const dest3 = `${reg.host}/other/copy-${auth}:1`;
    const pushEvents: ProgressEvent[] = [];
    const res = await pushImage({ store, manifest: pulled.manifestDescriptor, tags: [dest1, dest2, dest3], registry: optsFor(reg, pushEvents) });
    assert.is(res.digest, pulled.manifestDigest, 'pushed digest is the manifest digest');
    assert.equal(res.pushed, [dest1, dest2, dest3]);
    for (const d of [dest1, dest2, dest3]) {
      const i = await inspectImage(d, reg);
      assert.is(i.digest, pulled.manifestDigest, `${d} readable by skopeo with the same digest`);
    }
    // Same registry, blobs already there (the base repo): a fresh repo of the same registry mounts or finds them.
    const blobActions = pushEvents.filter((e): e is Extract<ProgressEvent, { type: 'blob' }> => e.type === 'blob' && !!e.done).map((e) => e.action);
    assert.ok(blobActions.includes('mount'), `cross-repository mount used (${blobActions.join(',')})`);
    assert.not.ok(blobActions.includes('push'), 'no blob uploaded again');

    const ran = await runImage(dest3, { registry: reg, args: ['sh', '-c', 'echo hello from $(cat /etc/passwd | head -1 | cut -d: -f1)'] });
    assert.is(ran.code, 0, ran.stderr);
    assert.is(ran.stdout.trim(), 'hello from root');
  });
}

test('push uploads blobs the registry lacks, then skips them on a second push', async () => {
  const dst = await withRegistry('htpasswd');
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const img = await makeRandomImage(store, [300_000, 2_000_000]);
  const dest = `${dst.host}/giteaadmin/uploaded:1`;
  const ev1: ProgressEvent[] = [];
  const r1 = await pushImage({ store, manifest: img.descriptor, tags: [dest], registry: optsFor(dst, ev1) });
  assert.is(r1.digest, img.descriptor.digest);
  const done = ev1.filter((e): e is Extract<ProgressEvent, { type: 'blob' }> => e.type === 'blob' && e.action === 'push' && !!e.done);
  assert.is(done.length, 1 + img.manifest.layers.length, 'config and every layer uploaded');
  for (const e of done) assert.is(e.current, e.total, 'progress reaches the blob size');
  const i1 = await inspectImage(dest, dst);
  assert.is(i1.digest, img.descriptor.digest, 'skopeo sees the pushed manifest');
  assert.equal(i1.config.rootfs.diff_ids, img.config.rootfs.diff_ids);
  const ev2: ProgressEvent[] = [];
  await pushImage({ store, manifest: img.descriptor, tags: [`${dst.host}/giteaadmin/uploaded:2`], registry: optsFor(dst, ev2) });
  assert.not.ok(ev2.some((e) => e.type === 'blob' && e.action === 'push'), 'second push uploads nothing');
  assert.ok(ev2.some((e) => e.type === 'blob' && e.action === 'exists'), 'HEAD found the blobs');
  const i = await inspectImage(`${dst.host}/giteaadmin/uploaded:2`, dst);
  assert.is(i.digest, img.descriptor.digest);
});

test('token auth: Gitea-like issuer gets GET requests with scopes, service and Basic user', async () => {
  const reg = await withRegistry('token');
  const base = await busyboxBase(reg, 'giteaadmin/busybox-tok', 'latest');
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const before = reg.token!.requests().length;
  await pullImage({ ref: base, store, registry: optsFor(reg) });
  const reqs = reg.token!.requests().slice(before);
  assert.ok(reqs.length >= 1, 'a token was requested');
  assert.ok(reqs.length <= 2, `tokens are cached per scope (${reqs.length} requests)`);
  for (const r of reqs) {
    assert.is(r.method, 'GET');
    assert.is(r.service, 'container_registry');
    assert.is(r.user, 'giteaadmin');
    assert.ok(r.scopes.includes('repository:giteaadmin/busybox-tok:pull'), r.scopes.join(' '));
  }
});

test('token auth: wrong password is a REGISTRY_AUTH error naming the registry', async () => {
  const reg = await withRegistry('token');
  const base = await busyboxBase(reg, 'giteaadmin/busybox-tok', 'latest');
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  try {
    await pullImage({ ref: base, store, registry: { caFile: reg.caFile, env: {}, credentials: { username: 'giteaadmin', password: 'wrong' } } });
    assert.unreachable('should fail');
  } catch (e) {
    const err = e as import('../lib/errors.js').OcistackError;
    assert.is(err.code, 'REGISTRY_AUTH');
    assert.is(err.registry, reg.host);
    assert.match(err.hint ?? '', /login|--creds/);
    assert.not.match(err.message + (err.hint ?? ''), /wrong/);
  }
});

test('anonymous push to htpasswd registry fails with a hint', async () => {
  const reg = await withRegistry('htpasswd');
  const base = await busyboxBase(reg, 'giteaadmin/busybox-anon', 'latest');
  const store = new BlobStore(join(makeTempDir('store'), 'cache'));
  const pulled = await pullImage({ ref: base, store, registry: optsFor(reg) });
  try {
    await pushImage({ store, manifest: pulled.manifestDescriptor, tags: [`${reg.host}/giteaadmin/anon:1`], registry: { caFile: reg.caFile, env: {} } });
    assert.unreachable('should fail');
  } catch (e) {
    const err = e as import('../lib/errors.js').OcistackError;
    assert.is(err.code, 'REGISTRY_AUTH', err.message);
    assert.is(err.registry, reg.host);
  }
});

test.after(async () => {
  for (const a of ['none', 'htpasswd', 'token'] as RegistryAuth[]) {
    try {
      await (await withRegistry(a)).stop();
    } catch {
      /* not started */
    }
  }
});

test.run();
