/**
 * `ocistack cache ls|du|prune` through the real bin, on a cache dir filled
 * by real builds (lib/engine/build.ts, COPY from scratch) and instruction
 * cache records written with lib/cache/record.ts. Live owners are real
 * child processes: one holding a cache mount's lock (lib/lock.ts), one
 * marked as a running build (lib/cache/active-builds.ts), later killed -9.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../lib/engine/build.js';
import { writeRecord, recordPath, recordsDir, RECORD_VERSION, type CacheRecord } from '../lib/cache/record.js';
import { BlobStore } from '../lib/image/store.js';
import type { Digest, ImageConfig, ImageManifest } from '../lib/image/types.js';
import { sha256 } from '../lib/image/digest.js';
import { statCachePath } from '../lib/context/content-digests.js';
import { cacheMountDir } from '../lib/executor/runc/step-mounts.js';
import { ocistack } from './helpers/cli.js';
import { makeTempDir } from './helpers/tools.js';

const LIB = (m: string): string => fileURLToPath(new URL(`../lib/${m}`, import.meta.url));

interface Built {
  manifest: Digest;
  config: Digest;
  layers: { digest: Digest; size: number; diffId: Digest; mediaType: string }[];
}

/** Build `FROM scratch / COPY f /f` with `content` into `cache`; tagged when `tag` is given. */
async function buildImage(cache: string, content: Buffer, tag?: string): Promise<Built> {
  const ctx = makeTempDir('cachectx');
  writeFileSync(path.join(ctx, 'f'), content);
  writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY f /f\n');
  const r = await build({ context: ctx, cacheDir: cache, tags: tag ? [tag] : [], sourceDateEpoch: 1_700_000_000 });
  // The engine records its own steps; these tests place exactly the records they reason about.
  rmSync(recordsDir(cache), { recursive: true, force: true });
  const store = new BlobStore(cache);
  const m = await store.readJson<ImageManifest>(r.manifestDigest);
  const cfg = await store.readJson<ImageConfig>(m.config.digest);
  return { manifest: r.manifestDigest, config: m.config.digest, layers: m.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: cfg.rootfs.diff_ids[i]! })) };
}

async function record(cache: string, name: string, b: Built, lastUsedSec?: number): Promise<CacheRecord> {
  const rec: CacheRecord = { version: RECORD_VERSION, key: sha256(name), description: `[1/1] COPY f /f (${name})`, kind: 'copy', created: new Date().toISOString(), layers: b.layers, history: [{ created: '2023-11-14T22:13:20Z', created_by: 'COPY f /f' }] };
  await writeRecord(cache, rec);
  if (lastUsedSec !== undefined) utimesSync(recordPath(cache, rec.key), lastUsedSec, lastUsedSec);
  return rec;
}

const blob = (cache: string, d: Digest): string => path.join(cache, 'blobs', 'sha256', d.slice(7));

async function duJson(cache: string) {
  const r = await ocistack(['cache', 'du', '--format', 'json', '--cache-dir', cache]);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** A child process that runs `code` (an ES module body), prints "ready" and stays until killed. */
async function holder(code: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `${code}\nprocess.stdout.write('ready\\n'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    child.on('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
  return child;
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

test('ls and du describe records, images and leftovers; default prune removes only what nothing uses', async () => {
  const cache = makeTempDir('cachecli');
  const tagged = await buildImage(cache, Buffer.from('tagged\n'), 'localhost/app:1');
  const untagged = await buildImage(cache, Buffer.from('untagged\n'));
  const recorded = await buildImage(cache, randomBytes(5000));
  await record(cache, 'r1', recorded);
  // The recorded build's manifest and config go, so its layer is referenced by the record alone.
  const store = new BlobStore(cache);
  rmSync(blob(cache, recorded.manifest));
  rmSync(blob(cache, recorded.config));
  const orphan = await store.putBytes(randomBytes(3000));
  // Derived data of the orphan (goes with it) and of a kept layer (stays).
  const snapGone = path.join(cache, 'snapshots', 'layers', 'aa'.repeat(32));
  const snapKept = path.join(cache, 'snapshots', 'layers', 'bb'.repeat(32));
  for (const [dir, layer] of [[snapGone, orphan.digest], [snapKept, tagged.layers[0]!.digest]] as const) {
    mkdirSync(path.join(dir, 'fs'), { recursive: true });
    writeFileSync(path.join(dir, 'fs', 'f'), 'x');
    writeFileSync(path.join(dir, 'layer.json'), JSON.stringify({ version: 1, layer }));
  }
  mkdirSync(path.join(cache, 'index', 'sha256'), { recursive: true });
  const ixGone = path.join(cache, 'index', 'sha256', `${orphan.digest.slice(7)}.json`);
  writeFileSync(ixGone, '{}');

  const ls = await ocistack(['cache', 'ls', '--cache-dir', cache]);
  assert.is(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^KEY\s+LAST USED\s+SIZE\s+DESCRIPTION$/m);
  assert.match(ls.stdout, new RegExp(`^${sha256('r1').slice(7, 19)}\\s+\\d+s ago\\s+[\\d.]+ kB\\s+\\[1/1\\] COPY f /f \\(r1\\)$`, 'm'));
  const lsJson = JSON.parse((await ocistack(['cache', 'ls', '--format', 'json', '--cache-dir', cache])).stdout);
  assert.is(lsJson.length, 1);
  assert.is(lsJson[0].key, sha256('r1'));
  assert.is(lsJson[0].size, recorded.layers[0]!.size);

  const before = await duJson(cache);
  assert.is(before.records.count, 1);
  assert.is(before.records.blobBytes, recorded.layers[0]!.size);
  assert.is(before.localImages.count, 1);
  assert.is(before.localImages.blobs, 3, 'manifest, config, layer of the tag');
  assert.is(before.pulledOrUntagged.manifests, 1);
  assert.is(before.unreferenced.blobs, 1);
  assert.is(before.unreferenced.blobBytes, 3000);
  assert.is(before.snapshots.count, 2);
  const duText = await ocistack(['cache', 'du', '--cache-dir', cache]);
  assert.match(duText.stdout, /^unreferenced blobs\s+1\s+3\.00 kB$/m);

  const pr = await ocistack(['cache', 'prune', '--cache-dir', cache]);
  assert.is(pr.code, 0, pr.stderr);
  assert.match(pr.stdout, /Removed 0 records, 1 blobs, 1 snapshots/);
  assert.match(pr.stdout, /Total reclaimed space: [\d.]+ kB/);
  assert.not.ok(existsSync(blob(cache, orphan.digest)), 'orphan blob removed');
  assert.not.ok(existsSync(snapGone), 'its snapshot removed');
  assert.not.ok(existsSync(ixGone), 'its layer index removed');
  assert.ok(existsSync(snapKept));
  for (const d of [tagged.manifest, tagged.config, tagged.layers[0]!.digest, untagged.manifest, untagged.config, untagged.layers[0]!.digest, recorded.layers[0]!.digest]) {
    assert.ok(existsSync(blob(cache, d)), `kept ${d}`);
  }
  assert.ok(existsSync(recordPath(cache, sha256('r1'))));
  const again = await ocistack(['cache', 'prune', '--cache-dir', cache]);
  assert.match(again.stdout, /Removed 0 records, 0 blobs, 0 snapshots/);
});

test('--keep-storage removes least recently used records (by record mtime) and their blobs until under SIZE', async () => {
  const cache = makeTempDir('cachecli');
  const now = Math.floor(Date.now() / 1000);
  const builds: Built[] = [];
  for (let i = 0; i < 3; i++) builds.push(await buildImage(cache, randomBytes(40_000 + i * 1000)));
  // Last use: r-new now, r-mid an hour ago, r-old a day ago; written in another order.
  await record(cache, 'r-mid', builds[0]!, now - 3600);
  await record(cache, 'r-old', builds[1]!, now - 86400);
  await record(cache, 'r-new', builds[2]!, now);
  const keep = builds[0]!.layers[0]!.size + builds[2]!.layers[0]!.size + 500;
  const r = await ocistack(['cache', 'prune', '--keep-storage', String(keep), '--format', 'json', '--cache-dir', cache]);
  assert.is(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.is(res.records, 1, 'one record dropped');
  assert.not.ok(existsSync(recordPath(cache, sha256('r-old'))), 'the least recently used');
  assert.not.ok(existsSync(blob(cache, builds[1]!.layers[0]!.digest)), 'its layer');
  assert.ok(existsSync(recordPath(cache, sha256('r-mid'))));
  assert.ok(existsSync(recordPath(cache, sha256('r-new'))));
  assert.ok(existsSync(blob(cache, builds[0]!.layers[0]!.digest)));
  assert.ok(existsSync(blob(cache, builds[2]!.layers[0]!.digest)));
  // Smaller than the newest record alone: everything goes.
  const r2 = await ocistack(['cache', 'prune', '--keep-storage', '1kB', '--cache-dir', cache]);
  assert.match(r2.stdout, /Removed 2 records/);
  assert.not.ok(existsSync(blob(cache, builds[2]!.layers[0]!.digest)));
});

test('--all keeps local images and a cache mount whose lock a live process holds; removes the rest', async () => {
  const cache = makeTempDir('cachecli');
  const tagged = await buildImage(cache, Buffer.from('keep me\n'), 'localhost/app:2');
  const other = await buildImage(cache, randomBytes(2000));
  await record(cache, 'r', other);
  mkdirSync(path.join(cache, 'buildcache', 'contexts'), { recursive: true });
  const statFile = statCachePath(cache, '/some/context');
  writeFileSync(statFile, '{"version":1,"context":"/some/context","entries":{}}');
  const lockedDir = cacheMountDir(cache, 'locked-one');
  const freeDir = cacheMountDir(cache, 'free-one');
  for (const d of [lockedDir, freeDir]) {
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'data'), 'cached');
  }
  const child = await holder(`const { acquireLock } = await import(${JSON.stringify(LIB('lock.js'))}); await acquireLock(${JSON.stringify(`${lockedDir}.lock`)});`);
  try {
    const r = await ocistack(['cache', 'prune', '--all', '--cache-dir', cache]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed 1 records, 3 blobs, 0 snapshots, 1 cache mounts, 1 stat caches/);
    assert.ok(existsSync(path.join(lockedDir, 'data')), 'the locked cache mount survives');
    assert.ok(existsSync(`${lockedDir}.lock`), 'and its lock');
    assert.not.ok(existsSync(freeDir));
    assert.not.ok(existsSync(statFile));
    for (const d of [tagged.manifest, tagged.config, tagged.layers[0]!.digest]) assert.ok(existsSync(blob(cache, d)), 'local image kept');
    for (const d of [other.manifest, other.config, other.layers[0]!.digest]) assert.not.ok(existsSync(blob(cache, d)));
    const ls = JSON.parse((await ocistack(['cache', 'ls', '--format', 'json', '--cache-dir', cache])).stdout);
    assert.equal(ls, []);
  } finally {
    await killed(child);
  }
  // Its owner is dead now (kill -9): the lock no longer protects it.
  const r = await ocistack(['cache', 'prune', '--all', '--cache-dir', cache]);
  assert.match(r.stdout, /1 cache mounts/);
  assert.not.ok(existsSync(lockedDir));
});

test('while a build runs, prune removes records but keeps blobs; after it is killed -9 they go', async () => {
  const cache = makeTempDir('cachecli');
  const b = await buildImage(cache, randomBytes(1000));
  await record(cache, 'r', b);
  const child = await holder(`const { markBuildActive } = await import(${JSON.stringify(LIB('cache/active-builds.js'))}); await markBuildActive(${JSON.stringify(cache)});`);
  try {
    const r = await ocistack(['cache', 'prune', '--all', '--cache-dir', cache]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed 1 records, 0 blobs/);
    assert.match(r.stderr, /another build is running/);
    assert.ok(existsSync(blob(cache, b.layers[0]!.digest)));
  } finally {
    await killed(child);
  }
  const r = await ocistack(['cache', 'prune', '--all', '--cache-dir', cache]);
  assert.match(r.stdout, /Removed 0 records, 3 blobs/);
  assert.not.match(r.stderr, /another build/);
  assert.not.ok(existsSync(blob(cache, b.layers[0]!.digest)));
});

test('usage errors exit 2 with a clear message', async () => {
  const cache = makeTempDir('cachecli');
  for (const [args, msg] of [
    [['cache', 'prune', '--keep-storage', '12 parsecs'], /--keep-storage takes a size such as 500MB/],
    [['cache', 'prune', '--keep-storage', 'lots'], /--keep-storage takes a size/],
    [['cache', 'prune', '--all', '--keep-storage', '1GB'], /do not go together/],
    [['cache', 'frob'], /unknown cache command "frob"/],
    [['cache'], /needs a command: ls, du or prune/],
    [['cache', 'ls', '--format', 'xml'], /--format takes "table" or "json"/],
    [['cache', 'du', '--all'], /unknown flag --all/],
  ] as const) {
    const r = await ocistack([...args, '--cache-dir', cache]);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  const ok = await ocistack(['cache', 'prune', '--keep-storage', '2GiB', '-f', '--cache-dir', cache]);
  assert.is(ok.code, 0, ok.stderr);
  // An unreadable tag list: prune cannot tell local images from garbage, so it stops (exit 1) and keeps the blobs.
  const b = await buildImage(cache, Buffer.from('tagged\n'), 'localhost/app:3');
  writeFileSync(path.join(cache, 'index.json'), '{"manifests": [');
  const bad = await ocistack(['cache', 'prune', '--all', '--cache-dir', cache]);
  assert.is(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /index\.json is unreadable/);
  assert.ok(existsSync(blob(cache, b.layers[0]!.digest)));
});

test.run();
