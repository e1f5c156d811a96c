/**
 * RUN --mount end to end. Cache mounts: two CLI builds sharing a cache dir,
 * the second (a different RUN) sees what the first wrote, neither image has
 * it. Build secrets: `ocistack build --secret id=...,src=FILE` and
 * `--secret id=...,env=VAR` with the runc executor on a busybox base from a
 * TLS registry, then a search for the secret values in everything the build
 * left: every file below the cache dir (the blob store, gzip layers
 * decompressed, snapshots), the OCI layout written with --output, the
 * config and history, the CLI's stdout and stderr with `--progress json`.
 * The RUN steps prove they saw the values by writing their hashes.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { withRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase } from './helpers/images.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';
import { ocistack } from './helpers/cli.js';

let reg: TestRegistry;
let base: string;
const FILE_SECRET = 'file-secret-Zq7pW3xK9';
const ENV_SECRET = 'env-secret-Hb4mT8vR2';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test.before(async () => {
  requireTool('runc');
  reg = await withRegistry('none');
  base = await busyboxBase(reg);
});

function* files(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (e.isFile()) yield p;
  }
}

/** Files below `dir` whose bytes (or gunzipped bytes) contain one of `needles`. */
function leaks(dir: string, needles: string[]): string[] {
  const found: string[] = [];
  for (const f of files(dir)) {
    let b = fs.readFileSync(f);
    if (b[0] === 0x1f && b[1] === 0x8b) {
      try {
        b = gunzipSync(b);
      } catch {
        /* not gzip after all */
      }
    }
    for (const n of needles) if (b.includes(n)) found.push(`${f}: ${n}`);
  }
  return found;
}

test('secrets from a file and from a variable: the steps see them; no blob, config, history, output or progress holds them', async () => {
  const dir = makeTempDir('secret-e2e');
  const secretFile = join(makeTempDir('secret-src'), 'token');
  fs.writeFileSync(secretFile, FILE_SECRET);
  fs.writeFileSync(join(dir, 'Dockerfile'), `ARG BASE
FROM \${BASE}
RUN --mount=type=secret,id=tok sha256sum < /run/secrets/tok > /tok.sha
RUN --mount=type=secret,id=api,env=API_KEY printf %s "$API_KEY" | sha256sum > /api.sha
RUN --mount=type=secret,id=tok,target=/opt/cfg/tok,required=true test -f /opt/cfg/tok && echo ok
`);
  const cacheDir = makeTempDir('secret-cache');
  const out = makeTempDir('secret-out');
  const r = await ocistack(['build', dir, '--build-arg', `BASE=${base}`, '--ca-file', reg.caFile, '--cache-dir', cacheDir,
    '--secret', `id=tok,src=${secretFile}`, '--secret', 'id=api,env=MY_API_KEY', '--progress', 'json', '-o', `type=oci,dest=${out}`],
  { env: { MY_API_KEY: ENV_SECRET } });
  assert.is(r.code, 0, r.stderr);
  // The steps saw both values.
  const layout = JSON.parse(fs.readFileSync(join(out, 'index.json'), 'utf8'));
  const blob = (d: string) => join(out, 'blobs', ...d.split(':'));
  const manifest = JSON.parse(fs.readFileSync(blob(layout.manifests[0].digest), 'utf8'));
  const config = fs.readFileSync(blob(manifest.config.digest), 'utf8');
  const unpacked = makeTempDir('secret-unpacked');
  for (const l of manifest.layers) await runOk('tar', ['-xzf', blob(l.digest), '-C', unpacked]);
  assert.is(fs.readFileSync(join(unpacked, 'tok.sha'), 'utf8'), `${sha(FILE_SECRET)}  -\n`);
  assert.is(fs.readFileSync(join(unpacked, 'api.sha'), 'utf8'), `${sha(ENV_SECRET)}  -\n`);
  assert.not.ok(fs.existsSync(join(unpacked, 'run')), '/run/secrets (absent from busybox) is not in the image');
  assert.not.ok(fs.existsSync(join(unpacked, 'opt')), '/opt/cfg is not in the image');
  // Nowhere else.
  const needles = [FILE_SECRET, ENV_SECRET];
  assert.equal(leaks(cacheDir, needles), [], 'no file of the cache dir (store, snapshots) holds a secret');
  assert.equal(leaks(out, needles), [], 'no blob of the OCI output holds a secret');
  for (const n of needles) {
    assert.not.ok(config.includes(n), 'config and history');
    assert.not.ok(r.stdout.includes(n), 'stdout');
    assert.not.ok(r.stderr.includes(n), 'stderr (--progress json)');
  }
  assert.match(config, /sha256sum < \/run\/secrets\/tok/, `history records the RUN: ${config}`);
  assert.match(r.stderr, /"ok/, 'json progress carries the step output');
});

test('a required secret that was not given: the RUN line, exit 1, the value of another secret nowhere', async () => {
  const dir = makeTempDir('secret-e2e-missing');
  fs.writeFileSync(join(dir, 'Dockerfile'), `ARG BASE
FROM \${BASE}
RUN --mount=type=secret,id=given,env=G --mount=type=secret,id=absent,required=true true
`);
  const r = await ocistack(['build', dir, '--build-arg', `BASE=${base}`, '--ca-file', reg.caFile, '--cache-dir', makeTempDir('secret-cache2'),
    '--secret', 'id=given,env=GIVEN', '--progress', 'plain'], { env: { GIVEN: ENV_SECRET } });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /Dockerfile:3/);
  assert.match(r.stderr, /secret "absent" is required/);
  assert.match(r.stderr, /--secret id=absent/);
  assert.not.ok(r.stderr.includes(ENV_SECRET) || r.stdout.includes(ENV_SECRET));
});

test('cache mount across two builds: the second build (another RUN) sees the first one\'s file; no image holds it', async () => {
  const cacheDir = makeTempDir('cache-e2e-cache');
  const build = async (runLine: string) => {
    const dir = makeTempDir('cache-e2e');
    fs.writeFileSync(join(dir, 'Dockerfile'), `ARG BASE\nFROM \${BASE}\n${runLine}\n`);
    const out = makeTempDir('cache-e2e-out');
    const r = await ocistack(['build', dir, '--build-arg', `BASE=${base}`, '--ca-file', reg.caFile, '--cache-dir', cacheDir, '--progress', 'plain', '-o', `type=oci,dest=${out}`]);
    assert.is(r.code, 0, r.stderr);
    const layout = JSON.parse(fs.readFileSync(join(out, 'index.json'), 'utf8'));
    const blob = (d: string) => join(out, 'blobs', ...d.split(':'));
    const manifest = JSON.parse(fs.readFileSync(blob(layout.manifests[0].digest), 'utf8'));
    const unpacked = makeTempDir('cache-e2e-unpacked');
    for (const l of manifest.layers) await runOk('tar', ['-xzf', blob(l.digest), '-C', unpacked]);
    return unpacked;
  };
  const first = await build('RUN --mount=type=cache,target=/root/.cache/pkgs,id=pkgs echo downloaded > /root/.cache/pkgs/dep.tgz');
  assert.not.ok(fs.existsSync(join(first, 'root/.cache')), 'the cache target is not in the first image');
  const second = await build('RUN --mount=type=cache,target=/cache,id=pkgs,sharing=locked cp /cache/dep.tgz /got.tgz');
  assert.is(fs.readFileSync(join(second, 'got.tgz'), 'utf8'), 'downloaded\n');
  assert.not.ok(fs.existsSync(join(second, 'cache')), 'nor in the second');
});

test.run();
