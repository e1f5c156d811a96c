/**
 * Checks the test environment helpers against the real tools: certificates,
 * docker-registry in every auth mode, the Gitea-like token issuer, the nginx
 * proxy, and the busybox base image built and run without ocistack.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { request } from 'node:https';
import { readFileSync } from 'node:fs';
import { MissingToolError, requireTool, run, httpsGet } from './helpers/tools.js';
import { testCerts } from './helpers/certs.js';
import { startRegistry, withRegistry, skopeoArgs, skopeoInspectArgs, type TestRegistry } from './helpers/registry.js';
import { busyboxBase, busyboxLayout, buildahBuild, inspectImage, inspectOciLayout, runImage, runOciLayout, APP_USER } from './helpers/images.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from './helpers/tools.js';
import { homedir } from 'node:os';
import { isAbsolute, relative } from 'node:path';
import { defaultCacheDir } from '../lib/image/store.js';

function basic(user: string, pass: string): string {
  return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
}

/** One HTTPS request with an optional body, trusting `ca`. */
function httpsRequest(
  url: string,
  ca: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, ca: readFileSync(ca) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** True when `p` is `dir` or below it. */
function inside(p: string, dir: string): boolean {
  const r = relative(dir, p);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
}

test('scripts/test.sh gives this file its own HOME, XDG dirs and blob cache, and no outer credentials', () => {
  const tmp = process.env.OCISTACK_TEST_TMP;
  assert.ok(tmp, 'OCISTACK_TEST_TMP is not set: run the tests through bash scripts/test.sh');
  const env = process.env;
  for (const name of ['HOME', 'XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_RUNTIME_DIR', 'OCISTACK_CACHE_DIR', 'TMPDIR'] as const) {
    const v = env[name];
    assert.ok(v && inside(v, tmp), `${name}=${v} is not inside ${tmp}`);
  }
  // What the library itself derives from them (os.homedir() reads HOME first).
  assert.is(homedir(), env.HOME);
  assert.ok(inside(defaultCacheDir(), tmp), `the default blob cache ${defaultCacheDir()} is outside ${tmp}`);
  // Unset, so docker's config is $HOME/.docker/config.json, inside too.
  for (const name of ['DOCKER_CONFIG', 'REGISTRY_AUTH_FILE', 'OCISTACK_USERNAME', 'OCISTACK_PASSWORD']) {
    assert.is(env[name], undefined, `${name} leaks in from the outer environment`);
  }
});

test('requireTool finds installed tools and fails loudly on missing ones', () => {
  for (const t of ['skopeo', 'umoci', 'runc', 'docker-registry', 'nginx', 'openssl', 'htpasswd', 'busybox'] as const) {
    assert.match(requireTool(t), /^\//, t);
  }
  assert.throws(() => requireTool('ocistack-no-such-tool'), (e: unknown) => e instanceof MissingToolError && /apt-get install/.test((e as Error).message));
});

test('run returns output and exit code, and kills on timeout', async () => {
  const ok = await run('sh', ['-c', 'echo out; echo err >&2; exit 3']);
  assert.is(ok.stdout, 'out\n');
  assert.is(ok.stderr, 'err\n');
  assert.is(ok.code, 3);
  const slow = await run('sleep', ['30'], { timeoutMs: 200 });
  assert.ok(slow.timedOut);
  assert.is(slow.code, 124);
});

test('failed commands are described without credentials', async () => {
  const err = await run('sh', ['-c', 'exit 2', '--dest-creds', 'u:s3cret', 'token=abc'], { check: true, redact: ['abc'] }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.not.match((err as Error).message, /s3cret|abc/);
  assert.match((err as Error).message, /failed with code 2/);
});

test('certificate is ECDSA P-256 with the IDPBuilder SANs; the other CA does not verify it', async () => {
  const c = await testCerts();
  const text = (await run('openssl', ['x509', '-in', c.certFile, '-noout', '-text'])).stdout;
  assert.match(text, /prime256v1|P-256/);
  assert.match(text, /DNS:cnoe\.localtest\.me/);
  assert.match(text, /DNS:\*\.cnoe\.localtest\.me/);
  assert.match(text, /DNS:localhost/);
  assert.match(text, /IP Address:127\.0\.0\.1/);
  assert.is((await run('openssl', ['verify', '-CAfile', c.caFile, c.certFile])).code, 0);
  assert.is.not((await run('openssl', ['verify', '-CAfile', c.otherCaFile, c.certFile])).code, 0);
});

test('anonymous registry: busybox base pushes, inspects and runs', async () => {
  const reg = await withRegistry('none');
  assert.match(reg.host, /^localhost:\d+$/);
  const ref = await busyboxBase(reg);
  assert.is(ref, `${reg.host}/library/busybox:latest`);
  const img = await inspectImage(ref, reg);
  // umoci writes an OCI manifest (it leaves the optional top-level mediaType out).
  assert.is(img.manifest.schemaVersion, 2);
  assert.is(img.manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
  assert.is(img.config.architecture, 'amd64');
  assert.is(img.config.os, 'linux');
  assert.equal(img.config.config.Cmd, ['sh']);
  assert.ok(img.config.config.Env.some((e: string) => e.startsWith('PATH=')));
  // The digest we compute must be the one the registry serves the manifest under.
  const byDigest = await run('skopeo', ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${reg.host}/library/busybox@${img.digest}`]);
  assert.is(byDigest.code, 0, byDigest.stderr);

  const hi = await runImage(ref, { registry: reg, args: ['echo', 'hi'] });
  assert.is(hi.stdout, 'hi\n', hi.stderr);
  assert.is(hi.code, 0);
  assert.equal(hi.process.args, ['sh']);

  const who = await runImage(ref, { registry: reg, args: ['sh', '-c', 'id -u; id -un; ls -ld /tmp; exit 7'], user: String(APP_USER.uid) });
  assert.is(who.code, 7);
  assert.match(who.stdout, /^1000\napp\ndrwxrwxrwt/);
});

test('busyboxBase can push Docker schema 2 manifests', async () => {
  const reg = await withRegistry('none');
  const ref = await busyboxBase(reg, 'library/busybox', 'v2s2', { format: 'v2s2' });
  const img = await inspectImage(ref, reg);
  assert.is(img.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const r = await runImage(ref, { registry: reg, args: ['echo', 'docker'] });
  assert.is(r.stdout, 'docker\n', r.stderr);
});

test('runOciLayout runs straight from a layout', async () => {
  const layout = await busyboxLayout();
  const r = await runOciLayout(layout.dir, layout.tag, { args: ['cat', '/etc/group'] });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^app:x:1000:$/m);
});

test('a certificate from another CA makes TLS fail', async () => {
  const reg = await withRegistry('none');
  const c = await testCerts();
  const r = await run('skopeo', ['inspect', '--raw', '--cert-dir', c.otherCertDir, `docker://${reg.host}/library/busybox:latest`]);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /x509|certificate/);
});

async function assertAuthRequired(reg: TestRegistry, repo: string): Promise<void> {
  const layout = await busyboxLayout();
  const anon = await run('skopeo', ['copy', '--quiet', '--dest-cert-dir', reg.certDir, '--dest-no-creds', `oci:${layout.dir}:${layout.tag}`, `docker://${reg.host}/${repo}:anon`]);
  assert.is.not(anon.code, 0, 'anonymous push must be refused');
  assert.match(anon.stderr, /unauthorized|authentication required|denied|insufficient/i);
  const wrong = await run('skopeo', ['copy', '--quiet', '--dest-cert-dir', reg.certDir, '--dest-creds', `${reg.username}:wrong-password`, `oci:${layout.dir}:${layout.tag}`, `docker://${reg.host}/${repo}:wrong`]);
  assert.is.not(wrong.code, 0, 'a wrong password must be refused');
  const ref = await busyboxBase(reg, repo, 'v1');
  const r = await runImage(ref, { registry: reg, args: ['echo', 'authed'] });
  assert.is(r.stdout, 'authed\n', r.stderr);
}

test('htpasswd registry: anonymous and wrong-password pushes are refused, right creds work', async () => {
  const reg = await withRegistry('htpasswd');
  assert.ok(reg.username && reg.password);
  const v2 = await httpsGet(`${reg.url}/v2/`, reg.caFile);
  assert.is(v2.status, 401);
  assert.match(String(v2.headers['www-authenticate']), /^Basic realm=/);
  await assertAuthRequired(reg, 'giteaadmin/htpasswd-check');
});

test('token registry: Gitea-like issuer, anonymous push refused, skopeo --creds accepted', async () => {
  const reg = await withRegistry('token');
  const t = reg.token!;
  // Like Gitea: the realm is on the registry's own host:port.
  assert.is(t.realm, `${reg.url}/v2/token`);
  const v2 = await httpsGet(`${reg.url}/v2/`, reg.caFile);
  assert.is(v2.status, 401);
  assert.match(String(v2.headers['www-authenticate']), new RegExp(`^Bearer realm="${t.realm}",service="container_registry"`));

  // The issuer answers like Gitea.
  const scope = 'repository:giteaadmin/probe:pull,push';
  const ok = await httpsRequest(`${t.realm}?service=container_registry&scope=${encodeURIComponent(scope)}`, reg.caFile, {
    headers: { Authorization: basic(reg.username!, reg.password!) },
  });
  assert.is(ok.status, 200);
  const body = JSON.parse(ok.body.toString());
  assert.equal(Object.keys(body), ['token']);
  const [h, c] = (body.token as string).split('.').map((p, i) => (i < 2 ? JSON.parse(Buffer.from(p, 'base64url').toString()) : p));
  assert.is(h.alg, 'ES256');
  assert.is(h.x5c.length, 1);
  assert.equal(c.access, [{ type: 'repository', name: 'giteaadmin/probe', actions: ['pull', 'push'] }]);
  // The registry accepts the issuer's token.
  const withToken = await httpsGet(`${reg.url}/v2/`, reg.caFile, { Authorization: `Bearer ${body.token}` });
  assert.is(withToken.status, 200, withToken.body);

  const bad = await httpsRequest(`${t.realm}?service=container_registry&scope=${encodeURIComponent(scope)}`, reg.caFile, {
    headers: { Authorization: basic(reg.username!, 'nope') },
  });
  assert.is(bad.status, 401);
  const post = await httpsRequest(t.realm, reg.caFile, { method: 'POST', body: Buffer.from('grant_type=password') });
  assert.is(post.status, 404);

  await assertAuthRequired(reg, 'giteaadmin/token-check');
  const seen = t.requests();
  assert.ok(seen.some((r) => r.user === reg.username && r.scopes.some((s) => s.startsWith('repository:giteaadmin/token-check:') && s.includes('push'))));
  assert.not.ok(JSON.stringify(seen).includes(reg.password!), 'the request log must not contain the password');
});

test('nginx proxy: passes Range and Location through, enforces client_max_body_size, injects faults', async () => {
  const reg = await startRegistry({ auth: 'none', proxy: { maxBodySize: '64k' } });
  try {
    assert.is.not(reg.host, reg.registryHost);
    // Monolithic blob upload bigger than the limit: 413 from nginx.
    const start = await httpsRequest(`${reg.url}/v2/proxy/check/blobs/uploads/`, reg.caFile, { method: 'POST' });
    assert.is(start.status, 202);
    const location = String(start.headers.location);
    assert.ok(location.startsWith(`${reg.url}/v2/proxy/check/blobs/uploads/`), `Location is not rewritten to the registry: ${location}`);
    assert.ok(start.headers['docker-upload-uuid']);
    const big = Buffer.alloc(100 * 1024, 1);
    const tooBig = await httpsRequest(location, reg.caFile, { method: 'PATCH', body: big, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.is(tooBig.status, 413);

    // A small blob goes through; a ranged GET gets 206 with the right bytes.
    const small = Buffer.from('0123456789abcdef');
    const digest = 'sha256:' + (await import('node:crypto')).createHash('sha256').update(small).digest('hex');
    const s2 = await httpsRequest(`${reg.url}/v2/proxy/check/blobs/uploads/`, reg.caFile, { method: 'POST' });
    const sep = String(s2.headers.location).includes('?') ? '&' : '?';
    const put = await httpsRequest(`${s2.headers.location}${sep}digest=${digest}`, reg.caFile, { method: 'PUT', body: small, headers: { 'Content-Type': 'application/octet-stream' } });
    assert.is(put.status, 201, put.body.toString());
    const ranged = await httpsRequest(`${reg.url}/v2/proxy/check/blobs/${digest}`, reg.caFile, { headers: { Range: 'bytes=4-7' } });
    assert.is(ranged.status, 206);
    assert.is(ranged.body.toString(), '4567');

    await reg.proxy!.setFaults([{ path: '^/v2/.+/blobs/uploads/', method: 'POST', status: 503 }]);
    const failed = await httpsRequest(`${reg.url}/v2/proxy/check/blobs/uploads/`, reg.caFile, { method: 'POST' });
    assert.is(failed.status, 503);
    const get = await httpsRequest(`${reg.url}/v2/proxy/check/blobs/${digest}`, reg.caFile);
    assert.is(get.status, 200);
    await reg.proxy!.setFaults([]);
    const again = await httpsRequest(`${reg.url}/v2/proxy/check/blobs/uploads/`, reg.caFile, { method: 'POST' });
    assert.is(again.status, 202);
  } finally {
    await reg.stop();
  }
});

test('token registry behind the proxy serves its realm on the same host, like Gitea', async () => {
  const reg = await startRegistry({ auth: 'token', proxy: { maxBodySize: '8m' } });
  try {
    assert.is(reg.token!.realm, `${reg.url}/v2/token`);
    const ref = await busyboxBase(reg, 'giteaadmin/busybox', 'proxied');
    const img = await inspectImage(ref, reg);
    assert.equal(img.config.config.Cmd, ['sh']);
  } finally {
    await reg.stop();
  }
});

test('buildahBuild builds FROM the busybox base (with RUN) into a layout runOciLayout can run', async () => {
  const reg = await withRegistry('htpasswd');
  const base = await busyboxBase(reg);
  const ctx = makeTempDir('ctx');
  mkdirSync(join(ctx, 'sub'));
  writeFileSync(join(ctx, 'sub', 'f.txt'), 'from context\n');
  writeFileSync(join(ctx, 'Dockerfile'), `ARG BASE\nFROM \${BASE}\nCOPY sub/f.txt /data/f.txt\nRUN echo built > /data/run.txt\nCMD ["cat", "/data/f.txt", "/data/run.txt"]\n`);
  const out = await buildahBuild(ctx, { registry: reg, buildArgs: { BASE: base }, tag: 'check:1' });
  const r = await runOciLayout(out.layoutDir, out.tag);
  assert.is(r.stdout, 'from context\nbuilt\n', r.stderr);
  const img = await inspectOciLayout(out.layoutDir, out.tag);
  assert.equal(img.config.config.Cmd, ['cat', '/data/f.txt', '/data/run.txt']);
  assert.is(img.manifest.layers.length, 3, 'busybox layer + COPY + RUN');
});

test('plain-HTTP registry (tls: false) works with skopeo --tls-verify=false', async () => {
  const reg = await startRegistry({ tls: false });
  try {
    assert.ok(reg.url.startsWith('http://'));
    const ref = await busyboxBase(reg, 'plain/busybox');
    const r = await runImage(ref, { registry: reg, args: ['pwd'], cwd: '/tmp' });
    assert.is(r.stdout, '/tmp\n', r.stderr);
  } finally {
    await reg.stop();
  }
});

test('plain-HTTP token registry advertises the https issuer as realm and accepts its tokens', async () => {
  const reg = await startRegistry({ auth: 'token', tls: false });
  try {
    assert.is(reg.proxy, undefined);
    const v2 = await httpsGet(`${reg.url}/v2/`, undefined);
    assert.is(v2.status, 401);
    const realm = reg.token!.realm;
    assert.match(realm, /^https:\/\/localhost:\d+\/v2\/token$/);
    const tok = await httpsRequest(`${realm}?service=container_registry`, reg.caFile, { headers: { Authorization: basic(reg.username!, reg.password!) } });
    const ok = await httpsGet(`${reg.url}/v2/`, undefined, { Authorization: `Bearer ${JSON.parse(tok.body.toString()).token}` });
    assert.is(ok.status, 200);
  } finally {
    await reg.stop();
  }
});

test('restart keeps port and data', async () => {
  const reg = await startRegistry({ auth: 'htpasswd' });
  try {
    const ref = await busyboxBase(reg, 'giteaadmin/restart', 'v1');
    await reg.restart();
    const img = await inspectImage(ref, reg);
    assert.equal(img.config.config.Cmd, ['sh']);
    assert.match(reg.logs(), /listening on 127\.0\.0\.1/);
  } finally {
    await reg.stop();
  }
  const gone = await run('skopeo', ['inspect', '--raw', ...skopeoArgs(reg, 'src').map((a) => a.replace('--src-', '--')), `docker://${reg.host}/giteaadmin/restart:v1`], { timeoutMs: 30_000 });
  assert.is.not(gone.code, 0, 'a stopped registry must not answer');
});

test.run();
