/**
 * lib/context/content-digests.ts: the context stat cache. Reads are counted
 * by a ContextSource wrapper, so "not read again" is proven, not assumed;
 * every digest is compared with a sha256 of the file computed here.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { BuildContext, openContext } from '../lib/context/context.js';
import { openContentDigests, parseStatEntry, RACY_MARGIN_MS, statCachePath } from '../lib/context/content-digests.js';
import type { FileIdentity } from '../lib/context/source.js';
import { PassThroughSource } from './helpers/pass-through-source.js';
import { makeTempDir } from './helpers/tools.js';

/** Wraps a source and counts the reads of file contents (open and readHead). */
class CountingSource extends PassThroughSource {
  reads: string[] = [];
  override open(rel: string) {
    this.reads.push(rel);
    return this.inner.open(rel);
  }
  readHead(rel: string, limit: number) {
    this.reads.push(rel);
    return this.inner.readHead!(rel, limit);
  }
}

async function countingContext(dir: string): Promise<{ ctx: BuildContext; source: CountingSource }> {
  const base = await openContext({ dir });
  const source = new CountingSource(base.source);
  return { ctx: new BuildContext({ dir: base.dir, source, ignore: base.ignore }), source };
}

function sha(file: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
}

/** Wait until files written so far are older than the racy margin (their ctime cannot be set back). */
const settle = () => delay(RACY_MARGIN_MS + 150);

const PAST = Math.floor(Date.now() / 1000) - 7200;

function makeTree(): { dir: string; cache: string; files: string[] } {
  const dir = makeTempDir('statctx');
  const cache = makeTempDir('statcache');
  mkdirSync(join(dir, 'src', 'deep'), { recursive: true });
  const files = ['a.txt', 'src/b.js', 'src/deep/c.bin', 'big.bin'];
  writeFileSync(join(dir, 'a.txt'), 'hello\n');
  writeFileSync(join(dir, 'src/b.js'), 'console.log(1)\n');
  writeFileSync(join(dir, 'src/deep/c.bin'), Buffer.alloc(3000, 7));
  writeFileSync(join(dir, 'big.bin'), Buffer.alloc(3 << 20, 1)); // above the one-read size: streamed
  // Whole seconds in the past, so a test can restore an mtime exactly (utimes takes no nanoseconds from JS).
  for (const f of files) utimesSync(join(dir, f), PAST, PAST);
  return { dir, cache, files };
}

async function digestAll(dir: string, cache: string, files: string[]) {
  const { ctx, source } = await countingContext(dir);
  const d = await openContentDigests({ context: ctx, cacheDir: cache });
  const digests = await Promise.all(files.map((f) => d.fileDigest(f)));
  for (const [i, f] of files.entries()) assert.is(digests[i], sha(join(dir, f)), `digest of ${f}`);
  await d.save();
  return { digests, reads: source.reads.sort() };
}

test('an unchanged file is not read again; the cache file is per context and atomic', async () => {
  const { dir, cache, files } = makeTree();
  await settle();
  const first = await digestAll(dir, cache, files);
  assert.equal(first.reads, [...files].sort(), 'first build reads every file');
  const file = statCachePath(cache, dir);
  assert.ok(existsSync(file), 'cache saved under buildcache/contexts');
  assert.equal(Object.keys(JSON.parse(readFileSync(file, 'utf8')).entries).sort(), [...files].sort());
  const mtime = statSync(file).mtimeMs;
  const second = await digestAll(dir, cache, files);
  assert.equal(second.reads, [], 'second build reads nothing');
  assert.equal(second.digests, first.digests);
  assert.is(statSync(file).mtimeMs, mtime, 'nothing changed: not rewritten');
  assert.equal(readdirSync(join(cache, 'buildcache', 'tmp')), [], 'no temp file left');
});

test('same size, mtime restored with utimes: ctime moved, so the file is hashed again', async () => {
  const { dir, cache, files } = makeTree();
  await settle();
  const first = await digestAll(dir, cache, files);
  const p = join(dir, 'a.txt');
  const before = statSync(p, { bigint: true });
  writeFileSync(p, 'HELLO\n'); // same size
  utimesSync(p, PAST, PAST);
  const after = statSync(p, { bigint: true });
  assert.is(after.size, before.size);
  assert.is(after.mtimeNs, before.mtimeNs, 'mtime restored');
  assert.not.equal(after.ctimeNs, before.ctimeNs, 'ctime cannot be restored');
  const second = await digestAll(dir, cache, files);
  assert.equal(second.reads, ['a.txt'], 'only the changed file is read');
  assert.not.equal(second.digests[0], first.digests[0], 'the new content gives a new digest');
});

test('chmod, touch and a replaced file (new inode) are hashed again, with the same digest', async () => {
  const { dir, cache, files } = makeTree();
  await settle();
  const first = await digestAll(dir, cache, files);
  chmodSync(join(dir, 'src/b.js'), 0o755);
  const t = new Date(Date.now() - 3600_000);
  utimesSync(join(dir, 'a.txt'), t, t);
  writeFileSync(join(dir, 'src/deep/c.bin.new'), readFileSync(join(dir, 'src/deep/c.bin')));
  const { renameSync } = await import('node:fs');
  renameSync(join(dir, 'src/deep/c.bin.new'), join(dir, 'src/deep/c.bin'));
  const second = await digestAll(dir, cache, files);
  assert.equal(second.reads, ['a.txt', 'src/b.js', 'src/deep/c.bin']);
  assert.equal(second.digests, first.digests, 'metadata changes do not change content digests');
  await settle();
  await digestAll(dir, cache, files); // remembered now that they are old enough
  const third = await digestAll(dir, cache, files);
  assert.equal(third.reads, []);
});

test('a corrupt or foreign cache file is an empty cache, and is replaced by a good one', async () => {
  const { dir, cache, files } = makeTree();
  await settle();
  const file = statCachePath(cache, dir);
  const v2bad = ['{"version":2,"entries":{"a.txt":{"size":1}}}', '{"version":2,"entries":{"a.txt":"1:2:3:4:5:6 zz 7"}}', '{"version":2,"entries":[1,2]}'];
  for (const bad of ['{"version":1,"entries":{"a.txt":', 'null', '{"version":99,"entries":{}}', '{"version":1,"entries":{"a.txt":{"size":"x"}}}', ...v2bad]) {
    mkdirSync(join(cache, 'buildcache', 'contexts'), { recursive: true });
    writeFileSync(file, bad);
    const r = await digestAll(dir, cache, files);
    assert.equal(r.reads, [...files].sort(), `all read with cache ${bad}`);
    assert.ok(JSON.parse(readFileSync(file, 'utf8')).entries['a.txt'], 'replaced by a valid cache');
  }
  const again = await digestAll(dir, cache, files);
  assert.equal(again.reads, []);
  // The right identity with a damaged digest is no entry: read again.
  const good = JSON.parse(readFileSync(file, 'utf8'));
  good.entries['a.txt'] = good.entries['a.txt'].replace(/ [0-9a-f]{64} /, ` ${'g'.repeat(64)} `);
  writeFileSync(file, JSON.stringify(good));
  const damaged = await digestAll(dir, cache, files);
  assert.equal(damaged.reads, ['a.txt']);
});

test('concurrent saves of one context: the file is whole and every entry is right', async () => {
  const { dir, cache, files } = makeTree();
  for (let i = 0; i < 40; i++) writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`);
  await settle();
  const all = [...files, ...Array.from({ length: 40 }, (_, i) => `f${i}.txt`)];
  const builds = await Promise.all(
    [0, 1, 2, 3].map(async (k) => {
      const { ctx } = await countingContext(dir);
      const d = await openContentDigests({ context: ctx, cacheDir: cache });
      const mine = all.filter((_, i) => i % 4 === k || i < 4);
      await Promise.all(mine.map((f) => d.fileDigest(f)));
      return d;
    }),
  );
  await Promise.all(builds.map((d) => d.save()));
  const parsed = JSON.parse(readFileSync(statCachePath(cache, dir), 'utf8'));
  const entries = Object.entries(parsed.entries as Record<string, string>).map(([rel, line]) => [rel, parseStatEntry(line)!] as const);
  assert.ok(entries.length >= 4);
  for (const [rel, e] of entries) assert.is(e?.digest, sha(join(dir, rel)), `entry ${rel}`);
  assert.equal(readdirSync(join(cache, 'buildcache', 'tmp')), [], 'no temp file left');
  // Whatever was saved is used: a later build reads at most what the last writer did not know.
  const r = await digestAll(dir, cache, all);
  assert.ok(r.reads.length <= all.length - entries.length, `reads ${r.reads.length}`);
});

test('two processes saving the same context at once, again and again: always a whole, correct cache', async () => {
  const { dir, cache, files } = makeTree();
  for (let i = 0; i < 200; i++) writeFileSync(join(dir, `g${i}.txt`), `g ${i}\n`);
  await settle();
  const all = [...files, ...Array.from({ length: 200 }, (_, i) => `g${i}.txt`)];
  const lib = (m: string) => JSON.stringify(fileURLToPath(new URL(`../lib/${m}`, import.meta.url)));
  const script = (half: number) => `
    const { openContext } = await import(${lib('context/context.js')});
    const { openContentDigests } = await import(${lib('context/content-digests.js')});
    const all = ${JSON.stringify(all)};
    for (let round = 0; round < 5; round++) {
      const d = await openContentDigests({ context: await openContext({ dir: ${JSON.stringify(dir)} }), cacheDir: ${JSON.stringify(cache)} });
      // Each round a different subset, so every save changes something and really writes.
      for (const f of all.filter((_, i) => (i + round + ${half}) % 3 !== 0)) await d.fileDigest(f);
      await d.save();
    }`;
  const run = (half: number) =>
    new Promise<number>((resolve) => spawn(process.execPath, ['--input-type=module', '-e', script(half)], { stdio: 'inherit' }).on('exit', (c) => resolve(c ?? -1)));
  assert.equal(await Promise.all([run(0), run(1)]), [0, 0]);
  const parsed = JSON.parse(readFileSync(statCachePath(cache, dir), 'utf8'));
  const entries = Object.entries(parsed.entries as Record<string, string>).map(([rel, line]) => [rel, parseStatEntry(line)!] as const);
  assert.ok(entries.length > 0);
  for (const [rel, e] of entries) assert.is(e?.digest, sha(join(dir, rel)), `entry ${rel}`);
  assert.equal(readdirSync(join(cache, 'buildcache', 'tmp')), [], 'no temp file left');
});

test('racy: a file written just before the build is not remembered, so a change in the same tick is seen', async () => {
  const { dir, cache, files } = makeTree();
  await settle();
  await digestAll(dir, cache, files);
  // Changed right before (and so within the timestamp granularity of) this build's lstat and save.
  const p = join(dir, 'a.txt');
  const before = statSync(p);
  writeFileSync(p, 'racy!\n');
  utimesSync(p, PAST, PAST);
  const second = await digestAll(dir, cache, files);
  assert.equal(second.reads, ['a.txt']);
  const saved = JSON.parse(readFileSync(statCachePath(cache, dir), 'utf8'));
  assert.not.ok(saved.entries['a.txt'], 'a racily clean entry is not stored');
  assert.ok(saved.entries['src/b.js'], 'settled entries are kept');
  // A second change the file system clock might not have told apart: it must be read again.
  writeFileSync(p, 'RACY!\n');
  utimesSync(p, PAST, PAST);
  const third = await digestAll(dir, cache, files);
  assert.equal(third.reads, ['a.txt'], 'hashed again, not trusted');
  await settle();
  await digestAll(dir, cache, files);
  const fourth = await digestAll(dir, cache, files);
  assert.equal(fourth.reads, [], 'remembered once it is old enough');
});

test('a file missing or unreadable fails that call only, and is not remembered', async () => {
  const { dir, cache, files } = makeTree();
  await settle();
  const { ctx } = await countingContext(dir);
  const d = await openContentDigests({ context: ctx, cacheDir: cache });
  let failed = false;
  await d.fileDigest('nope.txt').catch(() => (failed = true));
  assert.ok(failed, 'a missing file is an error');
  assert.is(await d.fileDigest('a.txt'), sha(join(dir, 'a.txt')));
  await d.save();
  const saved = JSON.parse(readFileSync(statCachePath(cache, dir), 'utf8'));
  assert.equal(Object.keys(saved.entries), ['a.txt']);
  void files;
});

/** The lstat identities a synchronous walk of the plain directory found (what step-key hands over). */
async function walkIdentities(dir: string): Promise<Map<string, FileIdentity>> {
  const ctx = await openContext({ dir });
  const out = new Map<string, FileIdentity>();
  for (const e of ctx.walkSync('')) if (e.stat.type === 'file') out.set(e.rel, e.stat.identity!);
  return out;
}

/** One "build" that digests with the walk's identities: knownDigest first (hits), fileDigest for the rest. */
async function digestKnown(dir: string, cache: string, files: string[], ids: Map<string, FileIdentity>) {
  const { ctx, source } = await countingContext(dir);
  const d = await openContentDigests({ context: ctx, cacheDir: cache });
  const hits: string[] = [];
  const digests: string[] = [];
  for (const f of files) {
    const hit = d.knownDigest!(f, ids.get(f)!);
    if (hit) hits.push(f);
    digests.push(hit ?? (await d.fileDigest(f, ids.get(f))));
  }
  await d.save();
  return { digests, hits, reads: source.reads.sort() };
}

test("the walk's identity: a hit reads nothing; a file changed after the walk is hashed whole and stored under the identity it was read with", async () => {
  const { dir, cache, files } = makeTree();
  await settle();
  const first = await digestKnown(dir, cache, files, await walkIdentities(dir));
  assert.equal(first.reads, [...files].sort(), 'first build reads every file');
  for (const [i, f] of files.entries()) assert.is(first.digests[i], sha(join(dir, f)));
  const second = await digestKnown(dir, cache, files, await walkIdentities(dir));
  assert.equal(second.reads, [], 'unchanged: nothing read');
  assert.equal(second.hits, files, 'every file a synchronous hit');
  // Changed, walked, then changed again (longer) before its digest is taken.
  const p = join(dir, 'a.txt');
  writeFileSync(p, 'version two\n');
  utimesSync(p, PAST, PAST);
  await settle();
  const walked = await walkIdentities(dir);
  writeFileSync(p, 'version three, longer\n');
  utimesSync(p, PAST, PAST);
  await settle();
  const third = await digestKnown(dir, cache, files, walked);
  assert.equal(third.reads, ['a.txt']);
  assert.equal(third.hits, files.slice(1));
  assert.is(third.digests[0], sha(p), 'all of the bytes on disk are hashed, not the walk\'s size of them');
  const saved = JSON.parse(readFileSync(statCachePath(cache, dir), 'utf8'));
  const now = statSync(p, { bigint: true });
  const stored = parseStatEntry(saved.entries['a.txt'])!;
  assert.equal([stored.size, stored.ctimeNs, stored.digest], [Number(now.size), String(now.ctimeNs), sha(p)], 'stored under the identity it was read with, not the walk\'s');
  assert.ok(!walked.get('a.txt')!.key.includes(`:${now.ctimeNs}:`), 'the walk saw version two');
  const fourth = await digestKnown(dir, cache, files, await walkIdentities(dir));
  assert.equal(fourth.reads, [], 'the next walk finds version three remembered');
  assert.is(fourth.digests[0], sha(p));
});

test("racy with the walk's identity: a file written just before the walk is not remembered", async () => {
  const { dir, cache, files } = makeTree();
  await settle();
  await digestKnown(dir, cache, files, await walkIdentities(dir));
  const p = join(dir, 'src/b.js');
  writeFileSync(p, 'racy()\n');
  utimesSync(p, PAST, PAST); // mtime old, ctime now: within the margin of the walk's clock reading
  const second = await digestKnown(dir, cache, files, await walkIdentities(dir));
  assert.equal(second.reads, ['src/b.js']);
  const saved = JSON.parse(readFileSync(statCachePath(cache, dir), 'utf8'));
  assert.not.ok(saved.entries['src/b.js'], 'a racily clean entry is not stored');
  const third = await digestKnown(dir, cache, files, await walkIdentities(dir));
  assert.equal(third.reads, ['src/b.js'], 'hashed again, not trusted');
});

test.run();
