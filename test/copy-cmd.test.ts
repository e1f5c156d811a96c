/**
 * The copy/push/pull/login/logout commands end to end against a real TLS
 * docker-registry with htpasswd auth. skopeo writes the docker-archive and
 * reads back every result; runc runs the copied image.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { CliCommand, CliIO } from '../lib/cli/types.js';
import { command as copy } from '../lib/cli/commands/copy.js';
import { command as push } from '../lib/cli/commands/push.js';
import { command as pull } from '../lib/cli/commands/pull.js';
import { command as login } from '../lib/cli/commands/login.js';
import { command as logout } from '../lib/cli/commands/logout.js';
import { isOcistackError, type OcistackError } from '../lib/errors.js';
import { busyboxLayout, inspectImage, runImage, runOciLayout } from './helpers/images.js';
import { withRegistry, type TestRegistry } from './helpers/registry.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  error?: OcistackError;
}

async function runCmd(cmd: CliCommand, argv: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: string; cwd?: string } = {}): Promise<Ran> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d) => (stdout += d));
  err.on('data', (d) => (stderr += d));
  const io: CliIO = { stdout: out, stderr: err, stdin: Readable.from(opts.stdin !== undefined ? [opts.stdin] : []), env: opts.env ?? { HOME: work }, cwd: opts.cwd ?? work };
  try {
    const code = await cmd.run(argv, io);
    return { code, stdout, stderr };
  } catch (e) {
    if (isOcistackError(e)) return { code: e.exitCode, stdout, stderr, error: e };
    throw e;
  }
}

const work = makeTempDir('copycmd');
const cache = join(work, 'cache');

function regFlags(reg: TestRegistry): string[] {
  return ['--ca-file', reg.caFile, '--creds', `${reg.username}:${reg.password}`, '--cache-dir', cache, '--progress', 'plain'];
}

test('copy docker-archive (written by skopeo) to docker://REG/giteaadmin/x:1, then run it', async () => {
  const reg = await withRegistry('htpasswd');
  const layout = await busyboxLayout();
  const archive = join(work, 'x.tar');
  await runOk(requireTool('skopeo'), ['copy', '--quiet', `oci:${layout.dir}:${layout.tag}`, `docker-archive:${archive}:x:1`]);
  const dest = `${reg.host}/giteaadmin/x:1`;
  const r = await runCmd(copy, [...regFlags(reg), `docker-archive:${archive}`, `docker://${dest}`]);
  assert.is(r.code, 0, r.error?.format() ?? r.stderr);
  const digest = r.stdout.trim();
  assert.match(digest, /^sha256:[a-f0-9]{64}$/);
  const i = await inspectImage(dest, reg);
  assert.is(i.digest, digest, 'printed digest is the manifest digest skopeo sees');
  assert.not.ok(r.stderr.includes(reg.password!), 'password not in output');
  const ran = await runImage(dest, { registry: reg, args: ['sh', '-c', 'echo archived-ok'] });
  assert.is(ran.code, 0, ran.stderr);
  assert.is(ran.stdout.trim(), 'archived-ok');
});

test('copy docker:// to oci:DIR:TAG, push oci: back under a bare name, pull --output', async () => {
  const reg = await withRegistry('htpasswd');
  const src = `${reg.host}/giteaadmin/x:1`;
  const dir = join(work, 'layout1');
  const r1 = await runCmd(copy, [...regFlags(reg), `docker://${src}`, `oci:${dir}:v1`]);
  assert.is(r1.code, 0, r1.error?.format() ?? r1.stderr);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  assert.is(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'v1');
  assert.is(index.manifests[0].digest, r1.stdout.trim());
  const ran = await runOciLayout(dir, 'v1', { args: ['sh', '-c', 'echo layout-ok'] });
  assert.is(ran.stdout.trim(), 'layout-ok', ran.stderr);

  const r2 = await runCmd(push, [...regFlags(reg), `oci:${dir}:v1`, `${reg.host}/giteaadmin/y:2`]);
  assert.is(r2.code, 0, r2.error?.format() ?? r2.stderr);
  assert.is(r2.stdout.trim(), r1.stdout.trim(), 'same manifest, same digest');
  assert.is((await inspectImage(`${reg.host}/giteaadmin/y:2`, reg)).digest, r1.stdout.trim());

  const dir2 = join(work, 'layout2');
  const r3 = await runCmd(pull, [...regFlags(reg), `${reg.host}/giteaadmin/y:2`, '--output', `oci:${dir2}`]);
  assert.is(r3.code, 0, r3.error?.format() ?? r3.stderr);
  const index2 = JSON.parse(readFileSync(join(dir2, 'index.json'), 'utf8'));
  assert.is(index2.manifests[0].annotations['org.opencontainers.image.ref.name'], '2', 'tag defaults to the reference tag');
  const sk = await runOk(requireTool('skopeo'), ['inspect', '--raw', `oci:${dir2}:2`]);
  assert.is(JSON.parse(sk).config.digest, JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', r1.stdout.trim().slice(7)), 'utf8')).config.digest);
});

test('copy oci: to docker-archive: that skopeo reads', async () => {
  const reg = await withRegistry('htpasswd');
  const out = join(work, 'out.tar');
  const r = await runCmd(copy, [...regFlags(reg), `oci:${join(work, 'layout1')}:v1`, `docker-archive:${out}:giteaadmin/z:3`]);
  assert.is(r.code, 0, r.error?.format() ?? r.stderr);
  const cfg = JSON.parse(await runOk(requireTool('skopeo'), ['inspect', '--config', '--raw', `docker-archive:${out}`]));
  assert.equal(cfg.config.Cmd, ['sh']);
  // skopeo finds the image by the tag written into manifest.json and can run it.
  const back = join(work, 'from-archive');
  await runOk(requireTool('skopeo'), ['copy', '--quiet', `docker-archive:${out}:giteaadmin/z:3`, `oci:${back}:z`]);
  const ran = await runOciLayout(back, 'z', { args: ['sh', '-c', 'echo archive-roundtrip'] });
  assert.is(ran.stdout.trim(), 'archive-roundtrip', ran.stderr);
});

test('login --password-stdin writes docker config; push uses it; logout removes it', async () => {
  const reg = await withRegistry('htpasswd');
  const home = makeTempDir('home');
  const env = { HOME: home };
  const bad = await runCmd(login, ['--ca-file', reg.caFile, '-u', reg.username!, '--password-stdin', reg.host], { env, stdin: 'wrong\n' });
  assert.is(bad.code, 1);
  assert.is(bad.error?.code, 'REGISTRY_AUTH', bad.error?.format());
  assert.not.ok(existsSync(join(home, '.docker', 'config.json')), 'nothing stored after a failed login');

  const ok = await runCmd(login, ['--ca-file', reg.caFile, '-u', reg.username!, '--password-stdin', reg.host], { env, stdin: `${reg.password}\n` });
  assert.is(ok.code, 0, ok.error?.format());
  assert.not.ok(ok.stderr.includes(reg.password!));
  const conf = JSON.parse(readFileSync(join(home, '.docker', 'config.json'), 'utf8'));
  assert.is(Buffer.from(conf.auths[reg.host].auth, 'base64').toString(), `${reg.username}:${reg.password}`);

  const r = await runCmd(push, ['--ca-file', reg.caFile, '--cache-dir', cache, '--progress', 'plain', `oci:${join(work, 'layout1')}:v1`, `${reg.host}/giteaadmin/fromlogin:1`], { env });
  assert.is(r.code, 0, r.error?.format());
  assert.match(r.stderr, new RegExp(`credentials for ${reg.host}: .*config.json \\(auths\\)`), 'source reported');

  const out = await runCmd(logout, [reg.host], { env });
  assert.is(out.code, 0);
  const after = JSON.parse(readFileSync(join(home, '.docker', 'config.json'), 'utf8'));
  assert.is(after.auths[reg.host], undefined);
  const denied = await runCmd(push, ['--ca-file', reg.caFile, '--cache-dir', cache, `oci:${join(work, 'layout1')}:v1`, `${reg.host}/giteaadmin/fromlogin:2`], { env });
  assert.is(denied.code, 1);
  assert.is(denied.error?.code, 'REGISTRY_AUTH');
});

test('TLS: without the CA the error names the host and both fixes; --insecure works for that host', async () => {
  const reg = await withRegistry('htpasswd');
  const creds = ['--creds', `${reg.username}:${reg.password}`, '--cache-dir', cache];
  const src = `oci:${join(work, 'layout1')}:v1`;
  const r = await runCmd(push, [...creds, src, `${reg.host}/giteaadmin/tls:1`]);
  assert.is(r.code, 1);
  assert.is(r.error?.code, 'TLS');
  assert.is(r.error?.registry, reg.host);
  assert.match(r.error!.hint!, /--ca-file/);
  assert.match(r.error!.hint!, /--insecure/);
  const wrongCa = await runCmd(push, [...creds, '--ca-file', reg.certs.otherCaFile, src, `${reg.host}/giteaadmin/tls:1`]);
  assert.is(wrongCa.error?.code, 'TLS', 'an unrelated CA does not help');
  const ok = await runCmd(push, [...creds, '--insecure', src, `${reg.host}/giteaadmin/tls:1`]);
  assert.is(ok.code, 0, ok.error?.format());
  // --cert-dir in the certs.d layout.
  const certsd = makeTempDir('certsd');
  const { mkdirSync, copyFileSync } = await import('node:fs');
  mkdirSync(join(certsd, reg.host));
  copyFileSync(reg.caFile, join(certsd, reg.host, 'ca.crt'));
  const viaDir = await runCmd(push, [...creds, '--cert-dir', certsd, src, `${reg.host}/giteaadmin/tls:2`]);
  assert.is(viaDir.code, 0, viaDir.error?.format());
});

test('usage errors exit 2', async () => {
  const r = await runCmd(copy, ['only-one']);
  assert.is(r.code, 2);
  const r2 = await runCmd(copy, ['busybox', 'oci:/tmp/x']);
  assert.is(r2.code, 2, 'a source without transport is a usage error');
  const r3 = await runCmd(push, ['oci:/tmp/x', 'gitea.cnoe.localtest.me:8443/app:1']);
  assert.is(r3.code, 2, 'Gitea needs owner/image');
  assert.match(r3.error!.hint!, /giteaadmin\/app/);
  writeFileSync(join(work, 'empty'), '');
});

test.after(async () => {
  await (await withRegistry('htpasswd')).stop().catch(() => undefined);
});

test.run();
