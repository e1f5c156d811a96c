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
 * Bind mounts through the CLI: from the context (.dockerignore applied,
 * writes discarded), from a stage and from an image; a source climbing out
 * of the context and a missing required ssh agent fail at their line; cache
 * from= a stage; `--ssh default` reaches a real agent.
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
import { packSshAdd, startTestAgent } from './helpers/ssh-agent.js';

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

/** Build `dockerfile` in `dir` (files already there) to an OCI layout; returns the CLI result and the unpacked image. */
async function buildIn(dir: string, dockerfile: string, extra: string[] = [], env: Record<string, string> = {}) {
  fs.writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  const out = makeTempDir('bind-e2e-out');
  const r = await ocistack(['build', dir, '--build-arg', `BASE=${base}`, '--ca-file', reg.caFile, '--cache-dir', makeTempDir('bind-e2e-cache'), '--progress', 'plain', '-o', `type=oci,dest=${out}`, ...extra], { env });
  if (r.code !== 0) return { r, unpacked: '' };
  const layout = JSON.parse(fs.readFileSync(join(out, 'index.json'), 'utf8'));
  const blob = (d: string) => join(out, 'blobs', ...d.split(':'));
  const manifest = JSON.parse(fs.readFileSync(blob(layout.manifests[0].digest), 'utf8'));
  const unpacked = makeTempDir('bind-e2e-unpacked');
  for (const l of manifest.layers) await runOk('tar', ['-xzf', blob(l.digest), '-C', unpacked]);
  return { r, unpacked };
}

test('bind from the context: read-only, the .dockerignore\'d file invisible, rw writes in neither the image nor the context', async () => {
  const dir = makeTempDir('bind-e2e-ctx');
  fs.mkdirSync(join(dir, 'src'));
  fs.writeFileSync(join(dir, 'src', 'main.txt'), 'main\n');
  fs.writeFileSync(join(dir, 'src', 'local.env'), 'IGNORED=1\n');
  fs.writeFileSync(join(dir, '.dockerignore'), '**/*.env\n');
  const { r, unpacked } = await buildIn(dir, `ARG BASE
FROM \${BASE}
RUN --mount=target=/s,source=src (cat /s/main.txt; ls /s; touch /s/x 2>/dev/null && echo writable || echo read-only) > /ro.out
RUN --mount=type=bind,source=src,target=/s,rw echo changed > /s/main.txt && touch /s/new && cat /s/main.txt > /rw.out
RUN ls -A / | grep -c '^s$' > /s.count || true
`);
  assert.is(r.code, 0, r.stderr);
  assert.is(fs.readFileSync(join(unpacked, 'ro.out'), 'utf8'), 'main\nmain.txt\nread-only\n');
  assert.is(fs.readFileSync(join(unpacked, 'rw.out'), 'utf8'), 'changed\n');
  assert.is(fs.readFileSync(join(unpacked, 's.count'), 'utf8'), '0\n', 'the target is not in the image');
  assert.not.ok(fs.existsSync(join(unpacked, 's')));
  assert.is(fs.readFileSync(join(dir, 'src', 'main.txt'), 'utf8'), 'main\n', 'the context is untouched');
  assert.not.ok(fs.existsSync(join(dir, 'src', 'new')));
});

test('bind from a stage and from an image; cache from= a stage seeds the cache', async () => {
  const dir = makeTempDir('bind-e2e-stage');
  const { r, unpacked } = await buildIn(dir, `ARG BASE
FROM \${BASE} AS deps
RUN mkdir -p /out/lib && echo built-in-deps > /out/lib/dep.txt && echo seed > /out/seed.txt
FROM \${BASE}
RUN --mount=type=bind,from=deps,source=/out,target=/deps cat /deps/lib/dep.txt > /from-stage
RUN --mount=type=bind,from=${base},source=/etc/passwd,target=/img-passwd head -1 /img-passwd > /from-image
RUN --mount=type=bind,from=0,source=out/lib/dep.txt,target=/by-index cat /by-index > /from-index
RUN --mount=type=cache,from=deps,source=/out,target=/cache,id=seeded cat /cache/seed.txt > /from-cache && echo later > /cache/later
RUN --mount=type=cache,from=deps,source=/out,target=/cache,id=seeded cat /cache/later > /cache-kept
`);
  assert.is(r.code, 0, r.stderr);
  assert.is(fs.readFileSync(join(unpacked, 'from-stage'), 'utf8'), 'built-in-deps\n');
  assert.is(fs.readFileSync(join(unpacked, 'from-image'), 'utf8'), 'root:x:0:0:root:/root:/bin/sh\n');
  assert.is(fs.readFileSync(join(unpacked, 'from-index'), 'utf8'), 'built-in-deps\n');
  assert.is(fs.readFileSync(join(unpacked, 'from-cache'), 'utf8'), 'seed\n');
  assert.is(fs.readFileSync(join(unpacked, 'cache-kept'), 'utf8'), 'later\n');
  for (const p of ['deps', 'img-passwd', 'by-index', 'cache', 'out']) assert.not.ok(fs.existsSync(join(unpacked, p)), p);
});

test('a bind source climbing out of the context: RUN_MOUNT_SOURCE at Dockerfile:3, exit 1', async () => {
  const dir = makeTempDir('bind-e2e-escape');
  const { r } = await buildIn(dir, `ARG BASE\nFROM \${BASE}\nRUN --mount=type=bind,source=../../etc,target=/e cat /e/passwd\n`);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /Dockerfile:3/);
  assert.match(r.stderr, /source=\.\.\/\.\.\/etc is outside the build context/);
});

test('ssh: --ssh default ($SSH_AUTH_SOCK) reaches a real agent from the RUN (SSH_AUTH_SOCK set for it); a required agent not given fails at its line', async () => {
  const agent = await startTestAgent(makeTempDir('ssh-e2e-agent'));
  try {
    const dir = makeTempDir('ssh-e2e');
    const sshAdd = await packSshAdd(join(dir, 'tools'), '/tools');
    const { r, unpacked } = await buildIn(dir, `ARG BASE
FROM \${BASE}
RUN --mount=type=ssh --mount=type=bind,source=tools,target=/tools echo "$SSH_AUTH_SOCK" > /sock && ${sshAdd} -l > /keys
`, ['--ssh', 'default'], { SSH_AUTH_SOCK: agent.socket });
    assert.is(r.code, 0, r.stderr);
    assert.is(fs.readFileSync(join(unpacked, 'sock'), 'utf8'), '/run/buildkit/ssh_agent.0\n');
    const keys = fs.readFileSync(join(unpacked, 'keys'), 'utf8');
    assert.ok(keys.includes(agent.fingerprint) && keys.includes(agent.comment), keys);
    assert.not.ok(fs.existsSync(join(unpacked, 'run')), '/run/buildkit is not in the image');
  } finally {
    await agent.stop();
  }
  const dir = makeTempDir('ssh-e2e-missing');
  const { r } = await buildIn(dir, `ARG BASE\nFROM \${BASE}\nRUN echo first\nRUN --mount=type=ssh,id=github,required=true true\n`);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /Dockerfile:4/);
  assert.match(r.stderr, /SSH agent "github" is required/);
  assert.match(r.stderr, /--ssh github=SOCKET/);
});

test('--ssh with a key file instead of an agent socket: usage error (exit 2) saying to ssh-add it', async () => {
  const dir = makeTempDir('ssh-e2e-key');
  fs.writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
  fs.writeFileSync(join(dir, 'id_ed25519'), 'not a socket');
  const r = await ocistack(['build', dir, '--ssh', `default=${join(dir, 'id_ed25519')}`]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /not a socket/);
  assert.match(r.stderr, /ssh-add/);
});

test.run();
