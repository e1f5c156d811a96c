/**
 * Reproducibility: the same Dockerfile and context, built twice with
 * SOURCE_DATE_EPOCH into two clean cache directories, from two copies of the
 * context made differently (other path, files created in the opposite
 * order, other mtimes, other inode numbers), gives the same manifest digest.
 * Those are the things that differ between two machines checking out the
 * same sources.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from '../lib/engine/build.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase } from './helpers/images.js';
import { makeTempDir } from './helpers/tools.js';

const work = makeTempDir('reproducible');
const SDE = 1700000000;

const files: [string, string, number][] = [
  ['app/main.js', 'console.log(1)\n', 0o644],
  ['app/lib/util.js', 'exports.x = 1\n', 0o644],
  ['bin/run', '#!/bin/sh\nexec node /app/main.js\n', 0o755],
  ['conf/app.conf', 'port=8080\n', 0o600],
  ['README.md', '# app\n', 0o644],
  ['.dockerignore', 'README.md\n', 0o644],
];

/** A context copy: `reverse` creates files in the opposite order; mtimes are "now" plus an offset (always after SDE). */
function makeContext(name: string, reverse: boolean, mtimeOffset: number): string {
  const dir = path.join(work, name, 'deeper', 'ctx');
  const list = reverse ? [...files].reverse() : files;
  for (const [rel, content, mode] of list) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
    fs.chmodSync(p, mode);
  }
  fs.symlinkSync('run', path.join(dir, 'bin/start'));
  fs.linkSync(path.join(dir, 'app/main.js'), path.join(dir, 'app/index.js'));
  const t = Date.now() / 1000 + mtimeOffset;
  const touch = (p: string) => {
    fs.lutimesSync(p, t, t);
    if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) touch(path.join(p, n));
  };
  touch(dir);
  return dir;
}

const dockerfile = (from: string) => `FROM ${from}
WORKDIR /srv
COPY app ./app/
COPY --chmod=755 bin/ /usr/local/bin/
COPY --chown=1000:1000 conf /etc/app/
COPY . /all/
`;

async function twice(from: string, registry?: TestRegistry): Promise<[string, string]> {
  const digests: string[] = [];
  for (const [i, reverse, offset] of [[0, false, 0], [1, true, 3600]] as const) {
    const ctx = makeContext(`${from.replace(/\W/g, '_')}-${i}`, reverse, offset);
    const df = path.join(ctx, '..', 'Dockerfile');
    fs.writeFileSync(df, dockerfile(from));
    const r = await build({
      context: ctx,
      dockerfile: df,
      tags: ['localhost/repro:latest'],
      output: [{ type: 'oci', dest: path.join(ctx, '..', 'out') }],
      cacheDir: path.join(work, `cache-${from.replace(/\W/g, '_')}-${i}`),
      sourceDateEpoch: SDE,
      registry: registry ? { caFile: registry.caFile } : undefined,
    });
    digests.push(r.manifestDigest);
  }
  return [digests[0]!, digests[1]!];
}

test('FROM scratch: two builds in two clean caches give the same manifest digest', async () => {
  const [a, b] = await twice('scratch');
  assert.is(a, b);
});

test('FROM a registry base: two builds in two clean caches give the same manifest digest', async () => {
  const reg = await startRegistry({ auth: 'none' });
  try {
    const base = await busyboxBase(reg);
    const [a, b] = await twice(base, reg);
    assert.is(a, b);
  } finally {
    await reg.stop();
  }
});

test('without the same SOURCE_DATE_EPOCH the digests differ (the test can fail)', async () => {
  const ctx = makeContext('sde-check', false, 0);
  const df = path.join(ctx, '..', 'Dockerfile');
  fs.writeFileSync(df, dockerfile('scratch'));
  const run = (sde: number, n: number) =>
    build({ context: ctx, dockerfile: df, tags: ['localhost/repro:latest'], output: [{ type: 'oci', dest: path.join(work, `sde-out-${n}`) }], cacheDir: path.join(work, `sde-cache-${n}`), sourceDateEpoch: sde });
  const a = await run(SDE, 1);
  const b = await run(SDE + 1, 2);
  assert.is.not(a.manifestDigest, b.manifestDigest);
});

test.run();
