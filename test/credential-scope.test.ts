/**
 * Credentials belong to one registry (issue 8, Security): `--creds`,
 * `registry.credentials` and OCISTACK_USERNAME/PASSWORD go to the push
 * targets only, never to the registry of the base image. The base registry
 * here is Gitea-like (token auth, anonymous pulls allowed) behind an nginx
 * that logs every request's Authorization header; the target is an htpasswd
 * registry with another password, like IDPBuilder's Gitea next to docker.io.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from '../lib/index.js';
import { busyboxBase } from './helpers/images.js';
import { ocistack } from './helpers/cli.js';
import { startRegistry, withRegistry, type TestRegistry } from './helpers/registry.js';
import { makeTempDir } from './helpers/tools.js';

let base: TestRegistry;
let target: TestRegistry;
let baseRef: string;

test.before(async () => {
  base = await startRegistry({ auth: 'token', proxy: { maxBodySize: '0', logAuthorization: true } });
  target = await withRegistry('htpasswd');
  baseRef = await busyboxBase(base, 'library/busybox', 'scope');
  assert.is.not(base.password, target.password);
});

test.after(async () => {
  await base?.stop();
});

/** The base registry's nginx access log (one line per request, `auth="..."` last). */
function baseAccessLog(): string[] {
  return (base.proxy!.logs().split('--- nginx access.log\n')[1] ?? '').split('\n').filter(Boolean);
}

/**
 * Run `fn`, then return the base registry's log lines it caused and the
 * token requests it made (the issuer records the Basic auth user, never the password).
 */
async function baseTraffic<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[]; tokenUsers: (string | undefined)[] }> {
  const before = baseAccessLog().length;
  const tokensBefore = base.token!.requests().length;
  const result = await fn();
  // nginx writes the line after answering; give it a moment to reach the file.
  await new Promise((r) => setTimeout(r, 200));
  return { result, lines: baseAccessLog().slice(before), tokenUsers: base.token!.requests().slice(tokensBefore).map((r) => r.user) };
}

function assertNoCredentials(t: { lines: string[]; tokenUsers: (string | undefined)[] }, what: string): void {
  assert.ok(t.lines.length > 0, `${what}: the base image was pulled through the logging proxy`);
  const basic = t.lines.filter((l) => /auth="Basic /i.test(l));
  assert.equal(basic, [], `${what}: Basic credentials reached the base image's registry`);
  assert.ok(!t.lines.join('\n').includes(Buffer.from(`${target.username}:${target.password}`).toString('base64')), `${what}: target credentials in the base log`);
  assert.equal(t.tokenUsers.filter(Boolean), [], `${what}: the base's token service saw a user`);
}

function context(name: string): string {
  const dir = makeTempDir(`scope-${name}`);
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${baseRef}\nCOPY hello.txt /hello.txt\n`);
  writeFileSync(join(dir, 'hello.txt'), 'hello\n');
  return dir;
}

function home(): string {
  const h = makeTempDir('scope-home');
  mkdirSync(join(h, '.docker'));
  return h;
}

test('library build(): registry.credentials without credentialsFor go to the tags registry only', async () => {
  const env = { HOME: home() };
  const ref = `${target.host}/giteaadmin/scope-lib:1`;
  const t = await baseTraffic(() =>
    build({
      context: context('lib'),
      tags: [ref],
      push: true,
      cacheDir: makeTempDir('scope-cache'),
      env,
      registry: { caFile: target.caFile, env, credentials: { username: target.username!, password: target.password! } },
    }).then((r) => r, (e: Error) => e),
  );
  assertNoCredentials(t, 'library');
  assert.ok(!(t.result instanceof Error), `build failed: ${(t.result as Error).message}`);
  assert.equal((t.result as { pushed: string[] }).pushed, [`${target.host}/giteaadmin/scope-lib:1`]);
});

test('library build() without tags: explicit credentials go to no registry', async () => {
  const env = { HOME: home() };
  const t = await baseTraffic(() =>
    build({
      context: context('notags'),
      cacheDir: makeTempDir('scope-cache'),
      env,
      registry: { caFile: target.caFile, env, credentials: { username: target.username!, password: target.password! } },
    }).then((r) => r, (e: Error) => e),
  );
  assertNoCredentials(t, 'no tags');
  assert.ok(!(t.result instanceof Error), `build failed: ${(t.result as Error).message}`);
});

test('CLI build --creds --push: the base registry gets no Authorization', async () => {
  const ref = `${target.host}/giteaadmin/scope-cli:1`;
  const t = await baseTraffic(() =>
    ocistack(['build', context('cli'), '-t', ref, '--push', '--ca-file', target.caFile, '--creds', `${target.username}:${target.password}`,
      '--cache-dir', makeTempDir('scope-cache'), '--progress', 'plain'], { env: { HOME: home() } }),
  );
  assertNoCredentials(t, 'CLI --creds');
  assert.is(t.result.code, 0, t.result.stderr);
});

test('CLI build --creds without -t: no registry gets them', async () => {
  const t = await baseTraffic(() =>
    ocistack(['build', context('cli-notag'), '--ca-file', target.caFile, '--creds', `${target.username}:${target.password}`,
      '--cache-dir', makeTempDir('scope-cache'), '--progress', 'plain'], { env: { HOME: home() } }),
  );
  assertNoCredentials(t, 'CLI --creds, no tags');
  assert.is(t.result.code, 0, t.result.stderr);
});

test('OCISTACK_USERNAME/OCISTACK_PASSWORD: for the push target, not the base registry', async () => {
  const ref = `${target.host}/giteaadmin/scope-env:1`;
  const t = await baseTraffic(() =>
    ocistack(['build', context('env'), '-t', ref, '--push', '--ca-file', target.caFile, '--cache-dir', makeTempDir('scope-cache'), '--progress', 'plain'], {
      env: { HOME: home(), OCISTACK_USERNAME: target.username!, OCISTACK_PASSWORD: target.password! },
    }),
  );
  assertNoCredentials(t, 'env');
  assert.is(t.result.code, 0, t.result.stderr);
  assert.match(t.result.stderr, new RegExp(`credentials for ${target.host}: OCISTACK_USERNAME`));
});

test('a private base registry does not get --creds: 401 names it, the hint says ocistack login', async () => {
  const priv = await withRegistry('htpasswd', { password: 'another-Passw0rd' });
  assert.is.not(priv.host, target.host);
  const privBase = await busyboxBase(priv, 'giteaadmin/privbase', 'scope');
  const dir = makeTempDir('scope-priv');
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${privBase}\nCOPY hello.txt /hello.txt\n`);
  writeFileSync(join(dir, 'hello.txt'), 'hello\n');
  const r = await ocistack(['build', dir, '-t', `${target.host}/giteaadmin/scope-priv:1`, '--push', '--ca-file', target.caFile,
    '--creds', `${priv.username}:${priv.password}`, '--cache-dir', makeTempDir('scope-cache')], { env: { HOME: home() } });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`registry ${priv.host}`));
  assert.match(r.stderr, new RegExp(`hint: run "ocistack login ${priv.host}"; --creds .* never for a base image`));
});

test('per-host credentials (credentialsByHost) do reach the base registry they name', async () => {
  const env = { HOME: home() };
  const t = await baseTraffic(() =>
    build({
      context: context('byhost'),
      cacheDir: makeTempDir('scope-cache'),
      env,
      registry: { caFile: base.caFile, env, credentialsByHost: { [base.host]: { username: base.username!, password: base.password! } } },
    }),
  );
  assert.ok(t.lines.some((l) => /auth="Basic /.test(l)), 'the named host got its credentials');
  assert.equal(t.tokenUsers.filter(Boolean), [base.username]);
});

test('CLI copy registry -> registry: --creds go to the destination only; --src-creds/--dest-creds each to its side', async () => {
  const cache = () => makeTempDir('scope-cache');
  const t = await baseTraffic(() =>
    ocistack(['copy', '--ca-file', target.caFile, '--creds', `${target.username}:${target.password}`, '--cache-dir', cache(),
      `docker://${baseRef}`, `docker://${target.host}/giteaadmin/scope-copy:1`], { env: { HOME: home() } }),
  );
  assertNoCredentials(t, 'copy --creds');
  assert.is(t.result.code, 0, t.result.stderr);

  const t2 = await baseTraffic(() =>
    ocistack(['copy', '--ca-file', target.caFile, '--src-creds', `${base.username}:${base.password}`, '--dest-creds', `${target.username}:${target.password}`,
      '--cache-dir', cache(), '--progress', 'plain', `docker://${baseRef}`, `docker://${target.host}/giteaadmin/scope-copy:2`], { env: { HOME: home() } }),
  );
  assert.is(t2.result.code, 0, t2.result.stderr);
  assert.equal(t2.tokenUsers.filter(Boolean), [base.username], 'the source got --src-creds');
  assert.match(t2.result.stderr, new RegExp(`credentials for ${target.host}: credentialsByHost`));

  const same = await ocistack(['copy', '--src-creds', 'a:b', '--dest-creds', 'c:d', `docker://${target.host}/x/y:1`, `docker://${target.host}/x/z:1`], { env: { HOME: home() } });
  assert.is(same.code, 2, same.stderr);
  assert.match(same.stderr, /both name/);
});

test.run();
