/**
 * Registry pieces that need no registry: references, challenges, retry
 * timing, credential lookup order (with a real credential-helper script),
 * TLS policy from certs.d, size flags, locations, OCI layout writing.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseReference, isGiteaLike } from '../lib/registry/reference.js';
import { parseChallenges } from '../lib/registry/challenge.js';
import { retryAfterMs, isRetryableStatus, backoffDelay, resolveRetry } from '../lib/registry/retry.js';
import { resolveCredentials, storeCredentials, eraseCredentials } from '../lib/registry/credentials.js';
import { tlsPolicyFor, hostListed } from '../lib/registry/tls.js';
import { parsePlatform, selectManifest, hostPlatform } from '../lib/registry/platform.js';
import { copyCredentialHosts, parseLocation } from '../lib/registry/copy.js';
import { parseSize, registryOptionsFromFlags, registryFlagSpecs } from '../lib/cli/registry-flags.js';
import { parseArgs } from '../lib/cli/args.js';
import { parseArchiveRef } from '../lib/image/archive.js';
import { parseLayoutRef, writeOciLayout, readOciLayout } from '../lib/image/layout.js';
import { BlobStore } from '../lib/image/store.js';
import { OcistackError } from '../lib/errors.js';
import { makeRandomImage } from './helpers/random-image.js';
import { makeTempDir } from './helpers/tools.js';
import { PassThrough, Readable } from 'node:stream';

function throwsCode(fn: () => unknown, code: string, hint?: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, code);
    if (hint) assert.match((e as OcistackError).hint ?? '', hint);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('parseReference normalises like docker', () => {
  const cases: [string, string, string, string | undefined, string | undefined][] = [
    ['busybox', 'docker.io', 'library/busybox', 'latest', undefined],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined],
    ['user/app', 'docker.io', 'user/app', 'latest', undefined],
    ['index.docker.io/library/alpine:3', 'docker.io', 'library/alpine', '3', undefined],
    ['localhost/app', 'localhost', 'app', 'latest', undefined],
    ['localhost:5000/a/b/c:v1', 'localhost:5000', 'a/b/c', 'v1', undefined],
    ['gitea.cnoe.localtest.me:8443/giteaadmin/app:1', 'gitea.cnoe.localtest.me:8443', 'giteaadmin/app', '1', undefined],
    [`reg.io/app@sha256:${'a'.repeat(64)}`, 'reg.io', 'app', undefined, `sha256:${'a'.repeat(64)}`],
    [`reg.io:443/app:t@sha256:${'b'.repeat(64)}`, 'reg.io:443', 'app', 't', `sha256:${'b'.repeat(64)}`],
  ];
  for (const [input, registry, repository, tag, digest] of cases) {
    const r = parseReference(input);
    assert.is(r.registry, registry, input);
    assert.is(r.repository, repository, input);
    assert.is(r.tag, tag, input);
    assert.is(r.digest, digest, input);
  }
  assert.is(parseReference('busybox').toString(), 'docker.io/library/busybox:latest');
  assert.is(parseReference(`a.io/x:1@sha256:${'c'.repeat(64)}`).toString(), `a.io/x:1@sha256:${'c'.repeat(64)}`);
});

test('parseReference rejects bad names with hints; Gitea needs owner/image', () => {
  throwsCode(() => parseReference('reg.io/Giteaadmin/App:1'), 'BAD_REFERENCE', /lowercase: write "giteaadmin\/app"/);
  throwsCode(() => parseReference('reg.io/app:-bad'), 'BAD_REFERENCE');
  throwsCode(() => parseReference('reg.io/app@sha256:123'), 'BAD_REFERENCE');
  throwsCode(() => parseReference('https://reg.io/app'), 'BAD_REFERENCE');
  throwsCode(() => parseReference(''), 'BAD_REFERENCE');
  throwsCode(() => parseReference('gitea.cnoe.localtest.me:8443/app:1'), 'BAD_REFERENCE', /gitea\.cnoe\.localtest\.me:8443\/giteaadmin\/app:1/);
  assert.is(parseReference('gitea.cnoe.localtest.me:8443/giteaadmin/my/app').repository, 'giteaadmin/my/app', 'Gitea allows nested image names');
  assert.ok(isGiteaLike('cnoe.localtest.me:8443'));
  assert.ok(isGiteaLike('my-gitea.example.com'));
  assert.not.ok(isGiteaLike('localhost:5000'));
  assert.ok(isGiteaLike('localhost:5000', { OCISTACK_GITEA_HOSTS: 'localhost:5000' }));
  try {
    parseReference('BAD');
  } catch (e) {
    assert.is((e as OcistackError).exitCode, 2, 'a bad reference is a usage error');
  }
});

test('WWW-Authenticate parsing: Gitea bearer, basic, several challenges', () => {
  const [g] = parseChallenges('Bearer realm="https://gitea.cnoe.localtest.me:8443/v2/token",service="container_registry",scope="*"');
  assert.is(g!.scheme, 'bearer');
  assert.equal(g!.params, { realm: 'https://gitea.cnoe.localtest.me:8443/v2/token', service: 'container_registry', scope: '*' });
  const [b] = parseChallenges('Basic realm="ocistack-test"');
  assert.equal(b, { scheme: 'basic', params: { realm: 'ocistack-test' } });
  const two = parseChallenges('Basic realm="x", Bearer realm="https://a/t",scope="repository:a/b:pull,push"');
  assert.is(two.length, 2);
  assert.is(two[1]!.params.scope, 'repository:a/b:pull,push');
  assert.equal(parseChallenges(null), []);
});

test('retry timing: Retry-After seconds and dates, capped; backoff grows and is bounded', () => {
  assert.is(retryAfterMs('2'), 2000);
  assert.is(retryAfterMs('1000'), 30_000);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.is(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.is(retryAfterMs('soon'), undefined);
  assert.is(retryAfterMs(null), undefined);
  for (const s of [429, 500, 502, 503, 504]) assert.ok(isRetryableStatus(s), String(s));
  for (const s of [400, 401, 403, 404, 413, 416, 501]) assert.not.ok(isRetryableStatus(s), String(s));
  const p = resolveRetry({ baseDelayMs: 100, maxDelayMs: 1000 });
  for (let i = 0; i < 10; i++) {
    const d = backoffDelay(i, p);
    assert.ok(d >= Math.min(1000, 100 * 2 ** i) / 2 && d <= Math.min(1000, 100 * 2 ** i), `attempt ${i}: ${d}`);
  }
});

test('credentials: order --creds > env > REGISTRY_AUTH_FILE > XDG auth.json > docker config; helpers', async () => {
  const home = makeTempDir('credhome');
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const authFile = join(home, 'auth.json');
  const xdg = join(home, 'run');
  mkdirSync(join(xdg, 'containers'), { recursive: true });
  mkdirSync(join(home, '.docker'), { recursive: true });
  writeFileSync(authFile, JSON.stringify({ auths: { 'a.io': { auth: b64('fromfile:p1') } } }));
  writeFileSync(join(xdg, 'containers', 'auth.json'), JSON.stringify({ auths: { 'a.io': { auth: b64('fromxdg:p2') }, 'b.io': { auth: b64('xdg-b:p3') } } }));
  // A real credential helper script in PATH.
  const bin = join(home, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'docker-credential-fake'), '#!/bin/sh\nread server\nif [ "$1" = get ] && [ "$server" = "h.io" ]; then echo \'{"ServerURL":"h.io","Username":"helper","Secret":"s3"}\'; exit 0; fi\necho "credentials not found in native keychain"; exit 1\n');
  chmodSync(join(bin, 'docker-credential-fake'), 0o755);
  writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://d.io': { auth: b64('docker:p4') }, 'h.io': {} }, credHelpers: { 'h.io': 'fake' } }));
  const env = { HOME: home, REGISTRY_AUTH_FILE: authFile, XDG_RUNTIME_DIR: xdg, PATH: `${bin}:${process.env.PATH}` };

  const explicit = await resolveCredentials('a.io', { env, credentials: { username: 'flag', password: 'x' }, credentialsFor: ['a.io'] });
  assert.is(explicit.credentials?.username, 'flag');
  assert.is(explicit.source, '--creds');
  const notFor = await resolveCredentials('b.io', { env, credentials: { username: 'flag', password: 'x' }, credentialsFor: ['a.io'] });
  assert.is(notFor.credentials?.username, 'xdg-b', '--creds for other hosts does not apply');
  const envCreds = { ...env, OCISTACK_USERNAME: 'envu', OCISTACK_PASSWORD: 'envp' };
  const fromEnv = await resolveCredentials('a.io', { env: envCreds, credentialsFor: ['a.io'] });
  assert.is(fromEnv.credentials?.username, 'envu');
  // OCISTACK_USERNAME/PASSWORD have --creds' scope: the targets only, nothing when no scope was set.
  assert.equal((await resolveCredentials('b.io', { env: envCreds, credentialsFor: ['a.io'] })).credentials?.username, 'xdg-b');
  assert.is((await resolveCredentials('none.io', { env: envCreds })).source, 'anonymous');
  assert.is((await resolveCredentials('none.io', { env, credentials: { username: 'flag', password: 'x' } })).source, 'anonymous', 'explicit credentials without a scope go nowhere');
  assert.is((await resolveCredentials('none.io', { env, credentials: { username: 'flag', password: 'x' }, credentialsFor: [] })).source, 'anonymous');
  // Per-host credentials go to their host (port included) and win over the rest.
  const byHost = { credentialsByHost: { 'A.io': { username: 'mapped', password: 'm' }, 'c.io:5000': { username: 'port', password: 'q' } } };
  assert.equal((await resolveCredentials('a.io', { env: envCreds, credentials: { username: 'flag', password: 'x' }, credentialsFor: ['a.io'], ...byHost })).credentials, { username: 'mapped', password: 'm' });
  assert.is((await resolveCredentials('c.io:5000', { env, ...byHost })).credentials?.username, 'port');
  assert.is((await resolveCredentials('c.io:5001', { env, ...byHost })).source, 'anonymous', 'another port is another registry');
  assert.is((await resolveCredentials('c.io:5001', { env, credentials: { username: 'flag', password: 'x' }, credentialsFor: ['c.io:5000'] })).source, 'anonymous');
  const fromFile = await resolveCredentials('a.io', { env });
  assert.equal(fromFile.credentials, { username: 'fromfile', password: 'p1' });
  assert.is(fromFile.source, `${authFile} (auths)`);
  assert.not.match(fromFile.source, /p1/);
  assert.is((await resolveCredentials('b.io', { env })).credentials?.username, 'xdg-b');
  assert.is((await resolveCredentials('d.io', { env })).credentials?.username, 'docker', 'https:// keys match');
  const helper = await resolveCredentials('h.io', { env });
  assert.equal(helper.credentials, { username: 'helper', password: 's3' });
  assert.match(helper.source, /docker-credential-fake/);
  assert.is((await resolveCredentials('none.io', { env })).source, 'anonymous');
});

test('login storage: docker format, other keys kept, mode 0600; logout erases', async () => {
  const home = makeTempDir('loginhome');
  mkdirSync(join(home, '.docker'));
  writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'x.io': { auth: 'eDp5' } }, psFormat: 'table' }));
  const env = { HOME: home };
  const where = await storeCredentials('gitea.cnoe.localtest.me:8443', { username: 'giteaadmin', password: 'pw' }, env);
  assert.is(where, join(home, '.docker', 'config.json'));
  const conf = JSON.parse(readFileSync(where, 'utf8'));
  assert.is(conf.psFormat, 'table');
  assert.is(conf.auths['x.io'].auth, 'eDp5');
  assert.is(Buffer.from(conf.auths['gitea.cnoe.localtest.me:8443'].auth, 'base64').toString(), 'giteaadmin:pw');
  const { statSync } = await import('node:fs');
  assert.is(statSync(where).mode & 0o777, 0o600);
  assert.equal((await resolveCredentials('gitea.cnoe.localtest.me:8443', { env })).credentials, { username: 'giteaadmin', password: 'pw' });
  assert.ok(await eraseCredentials('gitea.cnoe.localtest.me:8443', env));
  assert.not.ok(await eraseCredentials('gitea.cnoe.localtest.me:8443', env));
  assert.is((await resolveCredentials('gitea.cnoe.localtest.me:8443', { env })).source, 'anonymous');
});

test('TLS policy: insecure per host, CA from --ca-file and certs.d (host:port dir)', () => {
  const d = makeTempDir('certsd');
  mkdirSync(join(d, 'reg.io:8443'));
  writeFileSync(join(d, 'reg.io:8443', 'ca.crt'), 'PEM-A');
  writeFileSync(join(d, 'reg.io:8443', 'client.cert'), 'CERT');
  writeFileSync(join(d, 'reg.io:8443', 'client.key'), 'KEY');
  const env = { HOME: makeTempDir('tlshome') };
  const p = tlsPolicyFor('reg.io:8443', { certDir: d, insecureRegistries: ['other.io'], env });
  assert.is(p.insecure, false);
  assert.equal(p.ca, ['PEM-A']);
  assert.is(p.cert, 'CERT');
  assert.is(p.key, 'KEY');
  assert.ok(tlsPolicyFor('other.io:5000', { insecureRegistries: ['other.io'], env }).insecure, 'a bare host covers every port');
  assert.not.ok(tlsPolicyFor('reg.io:8443', { insecureRegistries: ['reg.io:9999'], env }).insecure);
  assert.ok(hostListed(['a:1'], 'a:1'));
  throwsCode(() => tlsPolicyFor('x', { caFile: '/nonexistent/ca.pem', env }), 'TLS', /--ca-file/);
});

test('platforms: parse, host default, selection with variants', () => {
  assert.equal(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  throwsCode(() => parsePlatform('linux/arm/v7/x'), 'BAD_PLATFORM');
  assert.is(hostPlatform().os, 'linux');
  const d = (architecture: string, variant?: string) => ({ mediaType: 'm', digest: `sha256:${architecture.padEnd(64, '0')}` as const, size: 1, platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) } });
  const list = [d('arm', 'v6'), d('arm', 'v7'), d('arm64'), d('amd64')];
  assert.is(selectManifest(list, parsePlatform('linux/arm/v7'), 'x').platform!.variant, 'v7');
  assert.is(selectManifest(list, parsePlatform('linux/arm64/v8'), 'x').platform!.architecture, 'arm64', 'arm64 without variant is v8');
  assert.is(selectManifest(list, parsePlatform('linux/amd64'), 'x').platform!.architecture, 'amd64');
});

test('locations, sizes, archive and layout refs', () => {
  assert.equal(parseLocation('docker://reg.io/a/b:1'), { transport: 'docker', ref: 'reg.io/a/b:1' });
  assert.equal(parseLocation('oci:/tmp/l:v1'), { transport: 'oci', dir: '/tmp/l', tag: 'v1' });
  assert.equal(parseLocation('oci:./l'), { transport: 'oci', dir: './l' });
  assert.equal(parseLocation('docker-archive:x.tar'), { transport: 'docker-archive', file: 'x.tar' });
  assert.equal(parseArchiveRef('x.tar:app:1'), { file: 'x.tar', ref: 'app:1' });
  assert.equal(parseArchiveRef('x.tar:@2'), { file: 'x.tar', index: 2 });
  assert.equal(parseLayoutRef('/a/b'), { dir: '/a/b' });
  assert.equal(parseLocation('reg.io/a/b:1', 'docker'), { transport: 'docker', ref: 'reg.io/a/b:1' });
  throwsCode(() => parseLocation('reg.io/a/b:1'), 'USAGE');
  throwsCode(() => parseLocation('dir:/x'), 'USAGE');
  assert.is(parseSize('8m', 'chunk-size'), 8 * 1024 * 1024);
  assert.is(parseSize('64MiB', 'chunk-size'), 64 * 1024 * 1024);
  assert.is(parseSize('1g', 'chunk-size'), 1024 ** 3);
  throwsCode(() => parseSize('10', 'chunk-size'), 'USAGE');
  throwsCode(() => parseSize('lots', 'chunk-size'), 'USAGE');
});

test('registry flags: --insecure and --creds only for the command-line registries; password from stdin', async () => {
  const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from(['s3cret\n']), env: {}, cwd: '/work' };
  const p = parseArgs(['--insecure', '--creds', 'giteaadmin', '--ca-file', 'ca.pem', '--chunk-size', '4m'], registryFlagSpecs, 'push');
  const o = await registryOptionsFromFlags(p, { targets: ['docker://gitea.cnoe.localtest.me:8443/giteaadmin/app:1', 'oci:/x'], io });
  assert.equal(o.insecureRegistries, ['gitea.cnoe.localtest.me:8443']);
  assert.equal(o.credentials, { username: 'giteaadmin', password: 's3cret' });
  assert.equal(o.credentialsFor, ['gitea.cnoe.localtest.me:8443']);
  // No registry target (a build without -t): --creds and OCISTACK_USERNAME/PASSWORD apply to no host.
  const p3 = parseArgs(['--creds', 'u:p'], registryFlagSpecs, 'build');
  assert.equal((await registryOptionsFromFlags(p3, { targets: [], io })).credentialsFor, []);
  assert.equal((await registryOptionsFromFlags(parseArgs([], registryFlagSpecs, 'build'), { targets: ['localhost:5000/a/b:1'], io })).credentialsFor, ['localhost:5000']);
  // copy/push: the destination registry only; a pull (registry -> oci:) the source.
  assert.equal(copyCredentialHosts(parseLocation('docker://a.io:1/x/y:1'), parseLocation('docker://b.io/x/y:1')), ['b.io']);
  assert.equal(copyCredentialHosts(parseLocation('docker://a.io:1/x/y:1'), parseLocation('oci:/tmp/l')), ['a.io:1']);
  assert.equal(copyCredentialHosts(parseLocation('oci:/tmp/l'), parseLocation('oci:/tmp/m')), []);
  assert.is(o.caFile, '/work/ca.pem');
  assert.is(o.chunkSize, 4 * 1024 * 1024);
  const p2 = parseArgs(['--insecure'], registryFlagSpecs, 'push');
  try {
    await registryOptionsFromFlags(p2, { targets: ['oci:/x'], io });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OcistackError).exitCode, 2);
  }
});

test('writeOciLayout: new layout appears whole; merge replaces a tag and keeps others; readOciLayout imports verified', async () => {
  const store = new BlobStore(join(makeTempDir('store'), 'c'));
  const a = await makeRandomImage(store, [1000]);
  const b = await makeRandomImage(store, [2000]);
  const parent = makeTempDir('layouts');
  const dir = join(parent, 'out');
  await writeOciLayout({ dir, store, manifests: [{ descriptor: a.descriptor, tag: 'one' }] });
  assert.equal(readdirSync(parent), ['out'], 'no temp dirs left beside it');
  assert.equal(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  let index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  assert.is(index.manifests.length, 1);
  await writeOciLayout({ dir, store, manifests: [{ descriptor: b.descriptor, tag: 'two' }] });
  await writeOciLayout({ dir, store, manifests: [{ descriptor: b.descriptor, tag: 'one' }] });
  index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const tags = Object.fromEntries(index.manifests.map((m: { digest: string; annotations: Record<string, string> }) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]));
  assert.equal(tags, { two: b.descriptor.digest, one: b.descriptor.digest });
  assert.ok(readdirSync(join(dir)).every((n) => !n.includes('.tmp')), 'no temp files');

  // A missing blob fails before anything is written.
  const missing = join(parent, 'missing');
  const bogus = { ...a.descriptor, digest: `sha256:${'e'.repeat(64)}` as const };
  try {
    await writeOciLayout({ dir: missing, store, manifests: [{ descriptor: bogus, tag: 'x' }] });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OcistackError).code, 'BLOB_MISSING');
  }
  assert.not.ok(existsSync(missing));

  const store2 = new BlobStore(join(makeTempDir('store'), 'c2'));
  const r = await readOciLayout({ dir, tag: 'two', store: store2 });
  assert.is(r.descriptor.digest, b.descriptor.digest);
  assert.ok(await store2.has(b.manifest.layers[0]!.digest));
  // A tampered layout blob is refused.
  const layerFile = join(dir, 'blobs', 'sha256', a.manifest.layers[0]!.digest.slice(7));
  const bytes = readFileSync(layerFile);
  bytes[0] = bytes[0]! ^ 1;
  const bad = join(parent, 'bad');
  const { cpSync } = await import('node:fs');
  cpSync(dir, bad, { recursive: true });
  writeFileSync(join(bad, 'blobs', 'sha256', a.manifest.layers[0]!.digest.slice(7)), bytes);
  const idx = JSON.parse(readFileSync(join(bad, 'index.json'), 'utf8'));
  idx.manifests.push({ ...a.descriptor, annotations: { 'org.opencontainers.image.ref.name': 'a' } });
  writeFileSync(join(bad, 'index.json'), JSON.stringify(idx));
  try {
    await readOciLayout({ dir: bad, tag: 'a', store: new BlobStore(join(makeTempDir('store'), 'c3')) });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OcistackError).code, 'DIGEST_MISMATCH');
  }
  try {
    await readOciLayout({ dir, store: store2 });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OcistackError).exitCode, 2, 'several images and no tag is a usage error');
  }
});

test.run();
