/**
 * The instruction cache (issue 11) through the library API and the real bin:
 * an unchanged rebuild hits every step and gives the same manifest digest
 * without SOURCE_DATE_EPOCH; a changed file reruns only the steps that read
 * it and what follows; .dockerignore'd changes hit; chmod and ARG changes
 * miss; noCache and noCacheFilter; RUN steps on busybox with runc; two
 * concurrent builds into one cache; a build killed with SIGKILL; corrupt
 * records and missing blobs are misses.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { build } from '../lib/engine/build.js';
import type { BuildOptions, BuildResult } from '../lib/engine/options.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import { recordsDir, buildCacheRoot } from '../lib/cache/record.js';
import { withRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase } from './helpers/images.js';
import { makeTempDir, requireTool } from './helpers/tools.js';
import { BIN, ocistack } from './helpers/cli.js';

function context(files: Record<string, string>, dockerfile: string): string {
  const dir = makeTempDir('cache-ctx');
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  fs.writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

/** A build with no SOURCE_DATE_EPOCH (the environment is cleared of it). */
async function b(ctx: string, cacheDir: string, extra: Partial<BuildOptions> = {}): Promise<BuildResult & { events: ProgressEvent[] }> {
  const events: ProgressEvent[] = [];
  const env = { ...process.env };
  delete env.SOURCE_DATE_EPOCH;
  const r = await build({ context: ctx, cacheDir, env, onProgress: (e) => events.push(e), ...extra });
  return { ...r, events };
}

const hits = (r: BuildResult): boolean[] => r.steps.map((s) => s.cached);

let reg: TestRegistry | undefined;
let base: string | undefined;
async function busybox(): Promise<{ base: string; registry: { caFile: string } }> {
  if (!reg) {
    reg = await withRegistry('none');
    base = await busyboxBase(reg);
  }
  return { base: base!, registry: { caFile: reg.caFile } };
}

const COPY_DF = ['FROM scratch', 'COPY a.txt /a', 'COPY b.txt /b', 'ENV X=1', 'COPY c.txt /c', 'LABEL l=1', ''].join('\n');

test('unchanged rebuild without SOURCE_DATE_EPOCH: every step cached, same manifest digest, cached events with position', async () => {
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' }, COPY_DF);
  const cache = makeTempDir('cache-dir');
  const first = await b(ctx, cache);
  assert.equal(hits(first), [false, false, false, false, false]);
  assert.ok(fs.readdirSync(recordsDir(cache)).length >= 5, 'every step wrote a record');
  // A second apart at least, so a clock in `created` would change the digest.
  await new Promise((r) => setTimeout(r, 1100));
  const second = await b(ctx, cache);
  assert.equal(hits(second), [true, true, true, true, true]);
  assert.is(second.manifestDigest, first.manifestDigest);
  const cached = second.events.filter((e) => e.type === 'step' && e.status === 'cached');
  assert.is(cached.length, 5);
  const c0 = cached[0] as Extract<ProgressEvent, { type: 'step' }>;
  assert.is(c0.index, 1);
  assert.is(c0.total, 5);
  assert.type(c0.durationMs, 'number');
  assert.not.ok(second.events.some((e) => e.type === 'step' && e.status === 'done' && !e.name.startsWith('pull')), 'no step ran');
});

test('one context file changed: only the step that reads it and the steps after it rerun', async () => {
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' }, COPY_DF);
  const cache = makeTempDir('cache-dir');
  const first = await b(ctx, cache);
  fs.writeFileSync(path.join(ctx, 'b.txt'), 'B changed');
  const second = await b(ctx, cache);
  assert.equal(hits(second), [true, false, false, false, false]);
  assert.is.not(second.manifestDigest, first.manifestDigest);
  assert.is(second.layers[0]!.digest, first.layers[0]!.digest);
  assert.is.not(second.layers[1]!.digest, first.layers[1]!.digest);
  // Nothing changed since: all hits, the same digest.
  const third = await b(ctx, cache);
  assert.equal(hits(third), [true, true, true, true, true]);
  assert.is(third.manifestDigest, second.manifestDigest);
});

test('a .dockerignore\'d file changed is a hit; a chmod is a miss; a touch without SOURCE_DATE_EPOCH is a miss, with it a hit', async () => {
  const ctx = context({ 'app/main.js': '1', 'app/secret.log': 'x', '.dockerignore': 'app/*.log\n' }, 'FROM scratch\nCOPY app /app\n');
  const cache = makeTempDir('cache-dir');
  const first = await b(ctx, cache);
  fs.writeFileSync(path.join(ctx, 'app', 'secret.log'), 'changed');
  const ignored = await b(ctx, cache);
  assert.equal(hits(ignored), [true]);
  assert.is(ignored.manifestDigest, first.manifestDigest);
  fs.chmodSync(path.join(ctx, 'app', 'main.js'), 0o755);
  assert.equal(hits(await b(ctx, cache)), [false]);
  const t = Date.now() / 1000 - 100;
  fs.utimesSync(path.join(ctx, 'app', 'main.js'), t, t);
  assert.equal(hits(await b(ctx, cache)), [false], 'the mtime lands in the layer');
  // With SOURCE_DATE_EPOCH in the past every mtime is clamped to it: a touch changes nothing that lands.
  const sde = 1_000_000;
  assert.equal(hits(await b(ctx, cache, { sourceDateEpoch: sde })), [false]);
  fs.utimesSync(path.join(ctx, 'app', 'main.js'), t + 50, t + 50);
  assert.equal(hits(await b(ctx, cache, { sourceDateEpoch: sde })), [true]);
});

test('ARG value changed: the steps that see it miss, a stage that does not declare it hits', async () => {
  const df = ['FROM scratch AS other', 'COPY a.txt /a', 'FROM scratch', 'COPY a.txt /a', 'ARG V', 'COPY b.txt /b-${V}', 'COPY --from=other /a /other-a', ''].join('\n');
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B' }, df);
  const cache = makeTempDir('cache-dir');
  // The final stage's first COPY is the other stage's step exactly (same parent, instruction, file): a hit in the
  // first build when stage `other` finished it first, a miss when the two stages ran it at the same time.
  const first = hits(await b(ctx, cache, { buildArgs: { V: '1' } }));
  assert.equal([first[0], first[2], first[3], first[4]], [false, false, false, false]);
  assert.equal(hits(await b(ctx, cache, { buildArgs: { V: '1' } })), [true, true, true, true, true]);
  assert.equal(hits(await b(ctx, cache, { buildArgs: { V: '2' } })), [true, true, false, false, false]);
});

test('noCache runs every step but records them; noCacheFilter misses the named stages only', async () => {
  const df = ['FROM scratch AS one', 'COPY a.txt /a', 'FROM scratch AS two', 'COPY b.txt /b', 'COPY --from=one /a /a', ''].join('\n');
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B' }, df);
  const cache = makeTempDir('cache-dir');
  await b(ctx, cache);
  await new Promise((r) => setTimeout(r, 1100));
  const forced = await b(ctx, cache, { noCache: true });
  assert.equal(hits(forced), [false, false, false]);
  const after = await b(ctx, cache);
  assert.equal(hits(after), [true, true, true]);
  assert.is(after.manifestDigest, forced.manifestDigest, 'the noCache build recorded its results');
  assert.equal(hits(await b(ctx, cache, { noCacheFilter: ['one'] })), [false, true, true], 'stage two still hits: stage one\'s key is unchanged');
  assert.equal(hits(await b(ctx, cache, { noCacheFilter: ['1'] })), [true, false, false], 'by index');
});

test('CLI: CACHED in plain progress; --no-cache; --no-cache-filter as a comma list and repeated', async () => {
  const df = ['FROM scratch AS one', 'COPY a.txt /a', 'FROM scratch AS two', 'COPY b.txt /b', 'FROM scratch', 'COPY --from=one /a /a', 'COPY --from=two /b /b', ''].join('\n');
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B' }, df);
  const cache = makeTempDir('cache-dir');
  const cli = async (...extra: string[]): Promise<number> => {
    const r = await ocistack(['build', ctx, '--cache-dir', cache, '--progress', 'plain', ...extra]);
    assert.is(r.code, 0, r.stderr);
    return (r.stderr.match(/ CACHED/g) ?? []).length;
  };
  assert.is(await cli(), 0);
  assert.is(await cli(), 4);
  assert.is(await cli('--no-cache'), 0);
  assert.is(await cli('--no-cache-filter', 'one,two'), 2);
  assert.is(await cli('--no-cache-filter', 'one', '--no-cache-filter', '2'), 1);
  assert.is(await cli('--no-cache-filter', 'two'), 3);
});

test('a corrupt record and a missing layer blob are misses, never fatal', async () => {
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' }, COPY_DF);
  const cache = makeTempDir('cache-dir');
  const first = await b(ctx, cache);
  for (const name of fs.readdirSync(recordsDir(cache))) fs.writeFileSync(path.join(recordsDir(cache), name), '{"version":1,"key":');
  assert.equal(hits(await b(ctx, cache)), [false, false, false, false, false]);
  assert.equal(hits(await b(ctx, cache)), [true, true, true, true, true]);
  // The layer of `COPY b.txt /b` gone from the store: that step misses and reruns; its key is unchanged, so the steps after it still hit.
  const blob = path.join(cache, 'blobs', 'sha256', first.layers[1]!.digest.slice('sha256:'.length));
  assert.ok(fs.existsSync(blob), blob);
  fs.rmSync(blob);
  assert.equal(hits(await b(ctx, cache)), [true, false, true, true, true]);
});

test('COPY --link and a COPY from a stage through the cache', async () => {
  const df = ['FROM scratch AS src', 'COPY a.txt /dir/a', 'FROM scratch', 'COPY --link b.txt /x/y/b', 'COPY --from=src /dir /copied', ''].join('\n');
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B' }, df);
  const cache = makeTempDir('cache-dir');
  const first = await b(ctx, cache);
  assert.is(first.layers.length, 2);
  fs.writeFileSync(path.join(ctx, 'a.txt'), 'A2');
  const second = await b(ctx, cache);
  assert.equal(hits(second), [false, true, false], 'the COPY --from reruns because its stage changed');
});

test('RUN steps with runc on busybox: unchanged rebuild hits with the same digest; a changed file reruns its COPY and the RUN after it; a bind mount\'s content is in the key', async () => {
  requireTool('runc');
  const { base, registry } = await busybox();
  const df = [
    `FROM ${base}`,
    'RUN echo one > /one',
    'WORKDIR /app',
    'COPY a.txt ./',
    'RUN cat a.txt > b.txt',
    'RUN --mount=type=bind,source=m,target=/m cat /m/f > /from-mount',
    'ARG V=1',
    'RUN echo $V > /v',
    '',
  ].join('\n');
  const ctx = context({ 'a.txt': 'A', 'm/f': 'M' }, df);
  const cache = makeTempDir('cache-dir');
  const first = await b(ctx, cache, { registry });
  assert.equal(hits(first), [false, false, false, false, false, false, false]);
  await new Promise((r) => setTimeout(r, 1100));
  const second = await b(ctx, cache, { registry });
  assert.equal(hits(second), [true, true, true, true, true, true, true]);
  assert.is(second.manifestDigest, first.manifestDigest);
  fs.writeFileSync(path.join(ctx, 'm', 'f'), 'M2');
  assert.equal(hits(await b(ctx, cache, { registry })), [true, true, true, true, false, false, false]);
  assert.equal(hits(await b(ctx, cache, { registry, buildArgs: { V: '2' } })), [true, true, true, true, true, false, false]);
});

test('a RUN needing a required secret that is not given fails even when its result is cached', async () => {
  requireTool('runc');
  const { base, registry } = await busybox();
  const ctx = context({}, [`FROM ${base}`, 'RUN --mount=type=secret,id=tok,required=true wc -c /run/secrets/tok > /n', ''].join('\n'));
  const cache = makeTempDir('cache-dir');
  const secretFile = path.join(makeTempDir('secret'), 'tok');
  fs.writeFileSync(secretFile, 'value-never-in-a-key');
  assert.equal(hits(await b(ctx, cache, { registry, secrets: { tok: { file: secretFile } } })), [false]);
  assert.equal(hits(await b(ctx, cache, { registry, secrets: { tok: { file: secretFile } } })), [true]);
  for (const name of fs.readdirSync(recordsDir(cache))) {
    assert.not.ok(fs.readFileSync(path.join(recordsDir(cache), name), 'utf8').includes('value-never-in-a-key'));
  }
  try {
    await b(ctx, cache, { registry });
    assert.unreachable('the build must fail');
  } catch (e) {
    assert.match((e as Error).message, /required but was not given/);
  }
});

test('two concurrent builds of one Dockerfile into one cache dir both succeed; the next build hits', async () => {
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' }, COPY_DF);
  const cache = makeTempDir('cache-dir');
  const env = { SOURCE_DATE_EPOCH: '' }; // empty = unset
  const [x, y] = await Promise.all([0, 1].map(() => ocistack(['build', ctx, '--cache-dir', cache, '--progress', 'plain'], { env })));
  assert.is(x!.code, 0, x!.stderr);
  assert.is(y!.code, 0, y!.stderr);
  const next = await b(ctx, cache);
  assert.equal(hits(next), [true, true, true, true, true]);
  assert.ok([x!.stdout.trim(), y!.stdout.trim()].includes(next.manifestDigest));
  assert.equal(fs.readdirSync(path.join(buildCacheRoot(cache), 'tmp')), [], 'no record temp left');
});

test('a build killed with SIGKILL during a RUN leaves a cache the next build uses', async () => {
  requireTool('runc');
  const { base, registry } = await busybox();
  const df = [`FROM ${base}`, 'COPY a.txt /a', 'ARG S=0', 'RUN sleep $S', 'COPY b.txt /b', ''].join('\n');
  const ctx = context({ 'a.txt': 'A', 'b.txt': 'B' }, df);
  const cache = makeTempDir('cache-dir');
  const child = spawn(process.execPath, [BIN, 'build', ctx, '--cache-dir', cache, '--ca-file', registry.caFile, '--build-arg', 'S=60', '--progress', 'plain'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const deadline = Date.now() + 120_000;
  while (!/RUN sleep/.test(stderr)) {
    if (Date.now() > deadline) throw new Error(`the RUN never started:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1000)); // inside the sleep
  child.kill('SIGKILL');
  await exited;
  // A record temp as a kill -9 during a write would leave it (owner-named with the dead pid).
  const tmp = path.join(buildCacheRoot(cache), 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const leftovers = fs.readdirSync(path.join(cache, 'tmp')).filter((n) => n.includes(`-${child.pid}-`));
  for (const n of leftovers) fs.cpSync(path.join(cache, 'tmp', n), path.join(tmp, `record${n.slice(n.indexOf('-'))}`), { recursive: true });
  const next = await b(ctx, cache, { registry });
  assert.equal(hits(next), [true, false, false, false], 'the COPY before the killed RUN is reused (ARG S changed, so the rest reruns)');
  assert.equal(fs.readdirSync(path.join(cache, 'tmp')).filter((n) => n.includes(`-${child.pid}-`)), [], 'the killed build\'s temps are swept');
  assert.equal(fs.readdirSync(tmp).filter((n) => n.includes(`-${child.pid}-`)), [], 'a stale record temp is swept');
  assert.equal(hits(await b(ctx, cache, { registry })), [true, true, true, true]);
});

test.run();
