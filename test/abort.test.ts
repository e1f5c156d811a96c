/**
 * The library's AbortSignal (no CLI, no process exit to hide behind): an
 * abort is observed inside a layer write, a pull and a push while their
 * bytes are still flowing, and in the concurrency pool; each fails with
 * ABORTED, leaves no temp file and writes no tag.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { forEachLimited } from '../lib/concurrency.js';
import { OcistackError } from '../lib/errors.js';
import { BlobStore } from '../lib/image/store.js';
import { writeLayer } from '../lib/layer/write.js';
import { pullImage, pushImage } from '../lib/registry/index.js';
import { build } from '../lib/engine/build.js';
import { registeredTemps } from '../lib/temp-files.js';
import { makeRandomImage } from './helpers/random-image.js';
import { skopeoInspectArgs, withRegistry } from './helpers/registry.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';

const MiB = 1024 * 1024;

function assertAborted(e: unknown): void {
  assert.instance(e, OcistackError, String(e));
  assert.is((e as OcistackError).code, 'ABORTED', String(e));
}

function tmpEntries(store: BlobStore): string[] {
  const d = join(store.root, 'tmp');
  return existsSync(d) ? readdirSync(d) : [];
}

test('writeLayer stops mid-file when its store is aborted: ABORTED, no temp file, no blob', async () => {
  const ac = new AbortController();
  const store = new BlobStore(makeTempDir('abort-layer-'), { signal: ac.signal });
  const size = 64 * MiB;
  let given = 0;
  const content = async function* () {
    for (; given < size; given += MiB) {
      if (given === 4 * MiB) ac.abort(); // the writer is in the middle of this file
      yield Buffer.alloc(MiB, 1);
    }
  };
  const e = await writeLayer([{ path: '/big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size, content }], { store }).catch((x: unknown) => x);
  assertAborted(e);
  assert.ok(given < size, 'the whole file was read after the abort');
  assert.equal(tmpEntries(store), []);
  assert.not.ok(existsSync(join(store.root, 'blobs')), 'a blob was committed');
  assert.equal(registeredTemps().filter((p) => p.startsWith(store.root)), []);
});

test('forEachLimited skips tasks not started when the signal aborts, then fails with ABORTED', async () => {
  const ac = new AbortController();
  const started: number[] = [];
  const e = await forEachLimited([1, 2, 3, 4, 5, 6], 2, async (n) => {
    started.push(n);
    if (n === 2) ac.abort();
    await new Promise((r) => setTimeout(r, 5));
  }, ac.signal).catch((x: unknown) => x);
  assertAborted(e);
  assert.equal(started, [1, 2]);
});

test('pull and push observe the abort while bytes flow: ABORTED, no temp file, no tag', async () => {
  const reg = await withRegistry('none');
  const src = new BlobStore(makeTempDir('abort-src-'));
  const img = await makeRandomImage(src, [24 * MiB, 24 * MiB]);
  const tag = `${reg.host}/giteaadmin/aborted:push`;

  const pushAc = new AbortController();
  const pushErr = await pushImage({
    store: src, manifest: img.descriptor, tags: [tag],
    registry: { caFile: reg.caFile, env: {}, signal: pushAc.signal, onProgress: (ev) => ev.type === 'blob' && ev.action === 'push' && ev.current > 0 && pushAc.abort() },
  }).catch((x: unknown) => x);
  assertAborted(pushErr);
  const inspect = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${tag}`]);
  assert.is.not(inspect.code, 0, 'the aborted push wrote its tag');

  // The image in full, then pulled into a fresh store and aborted midway.
  const full = `${reg.host}/giteaadmin/aborted:full`;
  await pushImage({ store: src, manifest: img.descriptor, tags: [full], registry: { caFile: reg.caFile, env: {} } });
  const pullAc = new AbortController();
  const dest = new BlobStore(makeTempDir('abort-dest-'), { signal: pullAc.signal });
  const pullErr = await pullImage({
    ref: full, store: dest,
    registry: { caFile: reg.caFile, env: {}, signal: pullAc.signal, onProgress: (ev) => ev.type === 'blob' && ev.action === 'pull' && ev.current > 0 && pullAc.abort() },
  }).catch((x: unknown) => x);
  assertAborted(pullErr);
  assert.equal(tmpEntries(dest), [], 'partial downloads left in the store');
  for (const l of img.manifest.layers) assert.not.ok(await dest.has(l.digest), 'a layer was completed after the abort');
});

test('build with an aborted signal does no work and writes no output', async () => {
  const ac = new AbortController();
  ac.abort();
  const ctx = makeTempDir('abort-build-');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n');
  const out = join(ctx, 'out');
  const e = await build({ context: ctx, cacheDir: join(ctx, 'cache'), output: { type: 'oci', dest: out }, signal: ac.signal }).catch((x: unknown) => x);
  assertAborted(e);
  assert.not.ok(existsSync(out));
});

test.run();
