/**
 * The walking skeleton end to end (issue 2): `ocistack build` of a COPY-only
 * Dockerfile on a busybox base, pushed over TLS to a real docker-registry
 * (htpasswd and Gitea-like token auth), read back by skopeo and run by runc.
 * And the bad inputs: each a clear error, exit 1 (2 for usage), nothing
 * written, no tag pushed.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withRegistry, skopeoInspectArgs, type TestRegistry } from './helpers/registry.js';
import { busyboxBase, inspectImage, inspectOciLayout, runImage, runOciLayout } from './helpers/images.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';
import { ocistack, REPO_ROOT } from './helpers/cli.js';
import { build, OcistackError, type ProgressEvent } from '../lib/index.js';

const SKELETON = join(REPO_ROOT, 'fixtures', 'skeleton');

function tmp(name: string): string {
  return makeTempDir(`e2e-${name}`);
}

function creds(reg: TestRegistry): string[] {
  return ['--creds', `${reg.username}:${reg.password}`];
}

/** Is `ref` absent from the registry (manifest unknown)? Uses skopeo, not ocistack. */
async function tagMissing(reg: TestRegistry, ref: string): Promise<boolean> {
  const r = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${ref}`]);
  return r.code !== 0 && /manifest unknown|not found|name unknown/i.test(r.stderr);
}

async function checkSkeletonImage(reg: TestRegistry, ref: string, digest: string): Promise<void> {
  const img = await inspectImage(ref, reg);
  assert.is(img.digest, digest, 'registry serves the digest ocistack reported');
  assert.is(img.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  const cfg = img.config.config;
  assert.ok(cfg.Env.includes('GREETING_ENV=hi'), `Env: ${cfg.Env}`);
  assert.ok(cfg.Env.includes('APP_HOME=/srv/app'));
  assert.is(cfg.WorkingDir, '/srv/app');
  assert.is(cfg.User, '1000:1000');
  assert.equal(cfg.Labels, { 'org.opencontainers.image.title': 'skeleton', version: '1' });
  assert.equal(Object.keys(cfg.ExposedPorts).sort(), ['8080/tcp', '9090/udp']);
  assert.equal(cfg.Cmd.slice(0, 2), ['sh', '-c']);
  // History: one entry per instruction of the stage after the base's, layers only for COPY/WORKDIR.
  const ours = img.config.history.filter((h: { created_by?: string }) => /buildkit|^(ENV|LABEL|WORKDIR|EXPOSE|USER|CMD|ARG)/.test(h.created_by ?? ''));
  assert.ok(ours.some((h: { created_by: string }) => h.created_by.startsWith('COPY greeting.txt ./')), JSON.stringify(ours));
  assert.is(img.config.rootfs.diff_ids.length, img.manifest.layers.length);

  const out = await runImage(ref, { registry: reg });
  assert.is(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split('\n');
  assert.is(lines[0], 'hello from ocistack', 'CMD output starts with the copied file');
  assert.is(lines[1], 'env=hi', 'ENV from a --build-arg ARG');
  assert.is(lines[2], '/srv/app', 'WORKDIR');
  assert.is(lines[3], '1000', 'USER');
  assert.ok(out.stdout.includes('greeting.txt'));
  assert.ok(out.stdout.includes('index.html') && out.stdout.includes('a.css'), 'COPY of a directory copies its contents');
  assert.not.ok(out.stdout.includes('secret.txt'), '.dockerignore keeps secret.txt out');
  assert.not.ok(out.stdout.includes('build.log'), '.dockerignore keeps *.log out');
}

test('build --push over TLS with htpasswd auth: skopeo reads it, runc runs it, digest-file matches', async () => {
  const reg = await withRegistry('htpasswd');
  const base = await busyboxBase(reg);
  const dir = tmp('push');
  const digestFile = join(dir, 'digest');
  const ref = `${reg.host}/giteaadmin/skeleton:1`;
  const r = await ocistack([
    'build', SKELETON, '--build-arg', `BASE=${base}`, '--build-arg', 'GREETING=hi',
    '-t', ref, '-t', `${reg.host}/giteaadmin/skeleton:latest`, '--push',
    '--ca-file', reg.caFile, ...creds(reg), '--digest-file', digestFile, '--progress', 'plain',
  ]);
  assert.is(r.code, 0, r.stderr);
  const digest = readFileSync(digestFile, 'utf8').trim();
  assert.match(digest, /^sha256:[a-f0-9]{64}$/);
  assert.is(r.stdout.trim(), digest);
  await checkSkeletonImage(reg, ref, digest);
  const latest = await inspectImage(`${reg.host}/giteaadmin/skeleton:latest`, reg);
  assert.is(latest.digest, digest, 'both tags point at the same manifest');
  assert.not.ok(r.stderr.includes(reg.password!), 'the password never appears in output');
});

test('build --push with Gitea-like token auth and --insecure instead of a CA', async () => {
  const reg = await withRegistry('token');
  const base = await busyboxBase(reg);
  const ref = `${reg.host}/giteaadmin/skeleton-token:1`;
  const r = await ocistack([
    'build', SKELETON, '--build-arg', `BASE=${base}`, '--build-arg', 'GREETING=hi',
    '-t', ref, '--push', '--insecure', ...creds(reg),
  ]);
  assert.is(r.code, 0, r.stderr);
  await checkSkeletonImage(reg, ref, r.stdout.trim());
  assert.ok(reg.token!.requests().length > 0, 'the token issuer was asked');
});

test('build --output type=oci writes a layout that skopeo and runc accept, FROM scratch works', async () => {
  const dir = tmp('oci');
  const ctx = join(dir, 'ctx');
  mkdirSync(join(ctx, 'bin'), { recursive: true });
  cpSync('/bin/busybox', join(ctx, 'bin', 'busybox'));
  writeFileSync(join(ctx, 'msg'), 'from scratch\n');
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY msg /msg\nENTRYPOINT ["/bin/busybox"]\nCMD ["cat", "/msg"]\n');
  const out = join(dir, 'layout');
  const r = await ocistack(['build', ctx, '-t', 'scratchy:v1', '--output', `type=oci,dest=${out}`]);
  assert.is(r.code, 0, r.stderr);
  const img = await inspectOciLayout(out, 'v1');
  assert.is(img.digest, r.stdout.trim());
  assert.equal(img.config.config.Entrypoint, ['/bin/busybox']);
  assert.equal(img.config.config.Cmd, ['cat', '/msg']);
  const run1 = await runOciLayout(out, 'v1');
  assert.is(run1.code, 0, run1.stderr);
  assert.is(run1.stdout, 'from scratch\n');
});

test('library API: build({ insecure, push, output }) from Node, as an embedding tool would call it', async () => {
  const reg = await withRegistry('htpasswd');
  const base = await busyboxBase(reg);
  const dir = tmp('api');
  const events: ProgressEvent[] = [];
  const ref = `${reg.host}/giteaadmin/skeleton-api:1`;
  const result = await build({
    context: SKELETON,
    buildArgs: { BASE: base, GREETING: 'hi' },
    tags: [ref],
    push: true,
    insecure: true,
    output: { type: 'oci', dest: join(dir, 'layout') },
    registry: { credentials: { username: reg.username!, password: reg.password! } },
    cacheDir: join(dir, 'cache'),
    onProgress: (e) => events.push(e),
  });
  assert.equal(result.pushed, [ref]);
  assert.is(result.tags[0], ref);
  assert.ok(result.layers.length >= 3);
  assert.match(result.configDigest, /^sha256:/);
  await checkSkeletonImage(reg, ref, result.manifestDigest);
  const layout = await inspectOciLayout(join(dir, 'layout'), '1');
  assert.is(layout.digest, result.manifestDigest, 'the layout and the registry hold the same manifest');
  assert.ok(events.some((e) => e.type === 'step' && e.status === 'done'), 'progress events reach the listener');
  assert.not.ok(JSON.stringify(events).includes(reg.password!), 'no event carries the password');
  // Without insecure and without a CA the same push fails with a typed error naming the registry.
  try {
    await build({ context: SKELETON, buildArgs: { BASE: base }, tags: [ref], push: true, cacheDir: join(dir, 'cache'), registry: { credentials: { username: reg.username!, password: reg.password! } } });
    assert.unreachable('TLS verification must fail');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.ok((e as OcistackError).format().includes(reg.host));
  }
});

// ------------------------------------------------------------- bad input ----

function badContext(files: Record<string, string>): string {
  const ctx = tmp('bad');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(ctx, name, '..'), { recursive: true });
    writeFileSync(join(ctx, name), text);
  }
  return ctx;
}

test('missing context and missing Dockerfile: exit 1 with the path and a hint', async () => {
  const a = await ocistack(['build', '/nonexistent/ctx']);
  assert.is(a.code, 1);
  assert.match(a.stderr, /build context "\/nonexistent\/ctx" does not exist/);
  assert.match(a.stderr, /hint:/);
  const ctx = badContext({ 'a.txt': 'x' });
  const b = await ocistack(['build', ctx]);
  assert.is(b.code, 1);
  assert.match(b.stderr, /Dockerfile .* not found/);
  assert.match(b.stderr, /-f/);
});

test('unknown instruction names file:line; RUN with --executor none says how to install runc; usage errors exit 2', async () => {
  const ctx = badContext({ Dockerfile: 'FROM scratch\nCOPY a.txt /\nFROBNICATE x\n', 'a.txt': 'x' });
  const out = join(ctx, 'out');
  const a = await ocistack(['build', ctx, '--output', `type=oci,dest=${out}`]);
  assert.is(a.code, 1);
  assert.match(a.stderr, /Dockerfile:3/);
  assert.match(a.stderr, /FROBNICATE/i);
  assert.not.ok(existsSync(out), 'no output written');

  const ctx2 = badContext({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n\nRUN echo hi\n', 'a.txt': 'x' });
  const b = await ocistack(['build', ctx2, '--executor', 'none', '--output', `type=oci,dest=${join(ctx2, 'out')}`]);
  assert.is(b.code, 1);
  assert.match(b.stderr, /Dockerfile:4/);
  assert.match(b.stderr, /RUN needs an executor/);
  assert.match(b.stderr, /apt-get install runc/);
  assert.not.ok(existsSync(join(ctx2, 'out')));

  const c = await ocistack(['build', ctx2, '--no-such-flag']);
  assert.is(c.code, 2);
  assert.match(c.stderr, /unknown flag --no-such-flag/);
  const d = await ocistack(['build', ctx2, '--output', 'type=tar,dest=x']);
  assert.is(d.code, 2);
  const e = await ocistack(['build', '--help']);
  assert.is(e.code, 0);
  assert.match(e.stdout, /--digest-file/);
});

test('COPY from outside the context (../x, symlink pointing out) fails naming the line', async () => {
  const ctx = badContext({ Dockerfile: 'FROM scratch\nCOPY ../secret /x\n' });
  const a = await ocistack(['build', ctx, '--output', `type=oci,dest=${join(ctx, 'out')}`]);
  assert.is(a.code, 1);
  assert.match(a.stderr, /Dockerfile:2/);
  assert.not.ok(existsSync(join(ctx, 'out')));

  const ctx2 = badContext({ Dockerfile: 'FROM scratch\nCOPY link/passwd /x\n' });
  symlinkSync('/etc', join(ctx2, 'link'));
  const b = await ocistack(['build', ctx2, '--output', `type=oci,dest=${join(ctx2, 'out')}`]);
  assert.is(b.code, 1, b.stderr);
  assert.match(b.stderr, /Dockerfile:2/);
  assert.not.ok(existsSync(join(ctx2, 'out')));
});

test('a base image that does not exist names the registry; no tag is pushed', async () => {
  const reg = await withRegistry('htpasswd');
  const ctx = badContext({ Dockerfile: `FROM ${reg.host}/library/nope:1\nCOPY a.txt /\n`, 'a.txt': 'x' });
  const ref = `${reg.host}/giteaadmin/never:1`;
  const r = await ocistack(['build', ctx, '-t', ref, '--push', '--ca-file', reg.caFile, ...creds(reg)]);
  assert.is(r.code, 1);
  assert.ok(r.stderr.includes(reg.host), r.stderr);
  assert.match(r.stderr, /nope/);
  assert.ok(await tagMissing(reg, ref));
});

test('wrong credentials: exit 1 naming the registry, nothing pushed, password not echoed', async () => {
  const reg = await withRegistry('htpasswd');
  const base = await busyboxBase(reg);
  const ref = `${reg.host}/giteaadmin/wrongcreds:1`;
  const r = await ocistack(['build', SKELETON, '--build-arg', `BASE=${base}`, '-t', ref, '--push', '--ca-file', reg.caFile, '--creds', `${reg.username}:not-the-password-42`]);
  assert.is(r.code, 1);
  assert.ok(r.stderr.includes(reg.host), r.stderr);
  assert.match(r.stderr, /credential|unauthori[sz]ed|authentication|401/i);
  assert.not.ok(r.stderr.includes('not-the-password-42'));
  assert.ok(await tagMissing(reg, ref));
});

test('TLS failure without --ca-file names the host and both fixes', async () => {
  const reg = await withRegistry('htpasswd');
  const ref = `${reg.host}/giteaadmin/tls:1`;
  const ctx = badContext({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'x' });
  const r = await ocistack(['build', ctx, '-t', ref, '--push', ...creds(reg)], { env: { HOME: tmp('home') } });
  assert.is(r.code, 1);
  assert.ok(r.stderr.includes(reg.host), r.stderr);
  assert.match(r.stderr, /--insecure/);
  assert.match(r.stderr, /--ca-file/);
});

test.run();
