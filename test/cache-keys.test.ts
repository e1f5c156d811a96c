/**
 * Cache-key precision (issue 11, lib/engine/step-key.ts): a filesystem step
 * (COPY, ADD, RUN, WORKDIR) is keyed by the files it starts from and exactly
 * what it takes from the config, so a changed ARG, ENV, LABEL, EXPOSE, CMD
 * or USER misses only the steps that use it, as in BuildKit; a metadata step
 * is keyed by everything before it.
 *
 * Each case builds twice into one cache dir (the second time with the
 * change), asserts which steps were cached, then builds the changed
 * Dockerfile once more with noCache into a fresh cache dir: with
 * SOURCE_DATE_EPOCH both give the same manifest digest, so a wrong hit (a
 * key missing something the step uses) shows as a different image, not only
 * as a cached flag.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from '../lib/engine/build.js';
import type { BuildOptions, BuildResult } from '../lib/engine/options.js';
import type { ImageConfig } from '../lib/image/types.js';
import { withRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase } from './helpers/images.js';
import { makeTempDir, requireTool } from './helpers/tools.js';

const SDE = 1_700_000_000;

function context(files: Record<string, string>): string {
  const dir = makeTempDir('keys-ctx');
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
  return dir;
}

const FILES = { 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' };

/** A build of `df` with SOURCE_DATE_EPOCH unless `sourceDateEpoch: undefined` is given. */
async function b(ctx: string, cacheDir: string, df: string, extra: Partial<BuildOptions> = {}): Promise<BuildResult> {
  const env = { ...process.env };
  delete env.SOURCE_DATE_EPOCH;
  return build({ context: ctx, cacheDir, env, dockerfileText: df, sourceDateEpoch: SDE, ...extra });
}

const hits = (r: BuildResult): boolean[] => r.steps.map((s) => s.cached);

function config(cacheDir: string, r: BuildResult): ImageConfig {
  return JSON.parse(fs.readFileSync(path.join(cacheDir, 'blobs', 'sha256', r.configDigest.slice('sha256:'.length)), 'utf8')) as ImageConfig;
}

interface Case {
  first: string;
  second: string;
  firstOpts?: Partial<BuildOptions>;
  secondOpts?: Partial<BuildOptions>;
  /** Cached flags of the second build. */
  expect: boolean[];
  files?: Record<string, string>;
  /** Between the builds (a context change). */
  change?: (ctx: string) => void;
}

/** Build `first`, then `second` into the same cache; check the flags and compare with a noCache build of `second`. */
async function check(c: Case): Promise<{ second: BuildResult; fresh: BuildResult; cache: string; freshCache: string }> {
  const ctx = context(c.files ?? FILES);
  const cache = makeTempDir('keys-cache');
  const reg = await registry();
  const first = await b(ctx, cache, c.first, { ...reg, ...c.firstOpts });
  assert.ok(first.steps.every((s) => !s.cached), 'the first build runs every step');
  // An unchanged rebuild hits every step (the keys are stable).
  assert.ok((await b(ctx, cache, c.first, { ...reg, ...c.firstOpts })).steps.every((s) => s.cached), 'an unchanged rebuild hits');
  c.change?.(ctx);
  const second = await b(ctx, cache, c.second, { ...reg, ...c.secondOpts });
  const freshCache = makeTempDir('keys-fresh');
  const fresh = await b(ctx, freshCache, c.second, { ...reg, ...c.secondOpts, noCache: true });
  assert.equal(hits(second), c.expect, second.steps.map((s) => `${s.cached ? 'CACHED' : 'ran   '} ${s.name}`).join('\n'));
  if (c.secondOpts?.sourceDateEpoch === undefined && c.secondOpts && 'sourceDateEpoch' in c.secondOpts) {
    // Without SOURCE_DATE_EPOCH: the same config apart from created times and the layers' (dated) content.
    const strip = (cfg: ImageConfig) => ({ ...cfg, created: undefined, rootfs: undefined, history: cfg.history?.map((h) => ({ ...h, created: undefined })) });
    assert.equal(strip(config(cache, second)), strip(config(freshCache, fresh)), 'the config is what a build without the cache gives');
  } else {
    assert.is(second.manifestDigest, fresh.manifestDigest, 'the image is what a build without the cache gives');
  }
  return { second, fresh, cache, freshCache };
}

let reg: TestRegistry | undefined;
let base: string | undefined;
let needsBase = false;
/** The registry options for the busybox base (started at the first case that names BASE). */
async function registry(): Promise<Partial<BuildOptions>> {
  if (!needsBase) return {};
  if (!reg) {
    reg = await withRegistry('none');
    base = await busyboxBase(reg);
  }
  return { registry: { caFile: reg.caFile } };
}
async function busybox(): Promise<string> {
  needsBase = true;
  await registry();
  return base!;
}

test('ARG value changed: COPYs before and after it that do not use it hit; a COPY using ${ARG} misses', async () => {
  const df = ['FROM scratch', 'COPY a.txt /a', 'ARG V', 'COPY b.txt /b', 'COPY c.txt /c-${V}', ''].join('\n');
  await check({ first: df, second: df, firstOpts: { buildArgs: { V: '1' } }, secondOpts: { buildArgs: { V: '2' } }, expect: [true, false, true, false] });
});

test('ARG value changed: a RUN after it misses (every ARG in scope is in its environment); one that made the same layer lets the next COPY hit', async () => {
  requireTool('runc');
  const from = `FROM ${await busybox()}`;
  const uses = [from, 'ARG V', 'COPY b.txt /b', 'RUN echo "v=$V" > /r', 'COPY c.txt /c', ''].join('\n');
  await check({ first: uses, second: uses, firstOpts: { buildArgs: { V: '1' } }, secondOpts: { buildArgs: { V: '2' } }, expect: [false, true, false, false] });
  const ignores = [from, 'ARG V', 'COPY b.txt /b', 'RUN echo same > /r', 'COPY c.txt /c', ''].join('\n');
  await check({ first: ignores, second: ignores, firstOpts: { buildArgs: { V: '1' } }, secondOpts: { buildArgs: { V: '2' } }, expect: [false, true, false, true] });
});

test('ENV value changed: a later COPY hits, a later RUN misses', async () => {
  requireTool('runc');
  const from = `FROM ${await busybox()}`;
  const df = (v: string) => [from, 'COPY a.txt /a', `ENV E=${v}`, 'COPY b.txt /b', 'RUN echo "e=$E" > /e', ''].join('\n');
  await check({ first: df('1'), second: df('2'), expect: [true, false, true, false] });
});

test('LABEL, EXPOSE and CMD changed: every filesystem step hits and the config is what a build without the cache gives (no SOURCE_DATE_EPOCH)', async () => {
  requireTool('runc');
  const from = `FROM ${await busybox()}`;
  const df = (l: string, port: string, cmd: string) =>
    [from, `LABEL l=${l}`, 'COPY a.txt /a', `EXPOSE ${port}`, 'RUN echo x > /x', 'WORKDIR /w', 'COPY b.txt ./', `CMD ["${cmd}"]`, 'COPY c.txt /c', ''].join('\n');
  const { second, cache } = await check({
    first: df('1', '80', 'one'),
    second: df('2', '81', 'two'),
    firstOpts: { sourceDateEpoch: undefined },
    secondOpts: { sourceDateEpoch: undefined },
    expect: [false, true, false, true, true, true, false, true],
  });
  const c = config(cache, second).config!;
  assert.equal(c.Labels, { l: '2' });
  assert.equal(Object.keys(c.ExposedPorts ?? {}), ['81/tcp']);
  assert.equal(c.Cmd, ['two']);
  assert.is(c.WorkingDir, '/w');
});

test('USER changed: a RUN misses, a COPY hits, a WORKDIR creating a directory misses (its owner)', async () => {
  requireTool('runc');
  const from = `FROM ${await busybox()}`;
  const run = (u: string) => [from, 'COPY a.txt /a', `USER ${u}`, 'COPY b.txt /b', 'RUN id -u > /tmp/uid', ''].join('\n');
  await check({ first: run('1'), second: run('2'), expect: [true, false, true, false] });
  const workdir = (u: string) => [from, 'COPY a.txt /a', `USER ${u}`, 'COPY b.txt /b', 'WORKDIR /made', ''].join('\n');
  await check({ first: workdir('1'), second: workdir('2'), expect: [true, false, true, false] });
});

test('WORKDIR changed to another existing directory: an absolute COPY hits, a relative COPY and a RUN miss', async () => {
  requireTool('runc');
  const from = `FROM ${await busybox()}`;
  const copy = (w: string) => [from, 'COPY a.txt /abs-a', `WORKDIR ${w}`, 'COPY b.txt /abs-b', 'COPY c.txt rel-c', ''].join('\n');
  // /tmp and /etc exist in busybox: WORKDIR adds no layer, so the files are unchanged and only the working directory differs.
  await check({ first: copy('/tmp'), second: copy('/etc'), expect: [true, false, true, false] });
  const run = (w: string) => [from, 'COPY a.txt /abs-a', `WORKDIR ${w}`, 'RUN pwd > /pwd', ''].join('\n');
  await check({ first: run('/tmp'), second: run('/etc'), expect: [true, false, false] });
});

test('SHELL changed: a shell-form RUN misses, an exec-form RUN hits', async () => {
  requireTool('runc');
  const from = `FROM ${await busybox()}`;
  const df = (sh: string) => [from, `SHELL ["/bin/sh", "${sh}"]`, 'COPY a.txt /a', 'RUN ["/bin/sh", "-c", "echo exec > /exec"]', 'RUN echo shell > /shell', ''].join('\n');
  await check({ first: df('-c'), second: df('-ec'), expect: [false, true, true, false] });
});

test('two stages: a LABEL changed in the builder stage leaves the final stage\'s COPY --from and a FROM child\'s COPY hits; a content change misses', async () => {
  const df = (l: string) => ['FROM scratch AS builder', 'COPY a.txt /a', `LABEL l=${l}`, 'FROM builder AS child', 'COPY b.txt /b', 'FROM scratch', 'COPY c.txt /c', 'COPY --from=builder /a /from-a', 'COPY --from=child /b /from-b', ''].join('\n');
  const { second, cache } = await check({ first: df('1'), second: df('2'), expect: [true, false, true, true, true, true] });
  assert.is(config(cache, second).config?.Labels?.l, undefined, 'the final stage is FROM scratch');
  const childDf = (l: string) => ['FROM scratch AS builder', 'COPY a.txt /a', `LABEL l=${l}`, 'FROM builder', 'COPY b.txt /b', ''].join('\n');
  const child = await check({ first: childDf('1'), second: childDf('2'), expect: [true, false, true] });
  assert.equal(config(child.cache, child.second).config?.Labels, { l: '2' }, 'the child inherits the changed label');
  await check({ first: df('1'), second: df('1'), change: (ctx) => fs.writeFileSync(path.join(ctx, 'a.txt'), 'A2'), expect: [false, false, false, true, false, false] });
});

test('an ONBUILD trigger changed: the child stage\'s trigger step misses', async () => {
  const df = (src: string) => ['FROM scratch AS parent', 'COPY a.txt /a', `ONBUILD COPY ${src} /onbuild`, 'FROM parent', 'COPY c.txt /c', ''].join('\n');
  await check({ first: df('b.txt'), second: df('c.txt'), expect: [true, false, false, false] });
});

test('SOURCE_DATE_EPOCH changed: a WORKDIR and a LABEL miss (the times they write)', async () => {
  const df = ['FROM scratch', 'WORKDIR /w', 'LABEL l=1', ''].join('\n');
  await check({ first: df, second: df, firstOpts: { sourceDateEpoch: SDE }, secondOpts: { sourceDateEpoch: SDE + 1000 }, expect: [false, false] });
});

test.run();
