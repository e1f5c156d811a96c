/**
 * Trusting the stack's Gitea (lib/stack/trust.ts) against a real
 * IDPBuilder-like registry at gitea.cnoe.localtest.me:<port>: flags, the
 * certificate kept under certs.d (reused, refreshed when the cluster was
 * recreated), the cluster's idpbuilder-cert secrets through the stand-in
 * kubectl, and skipping verification for the Gitea host only.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistrySession } from '../lib/registry/client.js';
import { tlsPolicyFor } from '../lib/registry/tls.js';
import { cachedCertPath, resolveGiteaTrust } from '../lib/stack/trust.js';
import { CERT_SANS, makeSelfSigned } from './helpers/certs.js';
import { startGiteaRegistry, type GiteaTestRegistry } from './helpers/gitea-registry.js';
import { standInCluster, type StandInCluster } from './helpers/stand-ins.js';
import { makeTempDir } from './helpers/tools.js';

let gitea: GiteaTestRegistry;
/** An old cluster's certificate: same names, another key. */
let stalePem: string;
let cluster: StandInCluster;
let config: string;

test.before(async () => {
  gitea = await startGiteaRegistry();
  const old = await makeSelfSigned(makeTempDir('old-cluster-cert'), 'old', 'cnoe.localtest.me', CERT_SANS);
  stalePem = readFileSync(old.certFile, 'utf8');
});
test.after(async () => {
  await gitea?.stop();
});
test.before.each(() => {
  cluster = standInCluster();
  config = makeTempDir('xdg-config');
});
test.after.each(() => {
  cluster.remove();
});

function env(c: StandInCluster = cluster): NodeJS.ProcessEnv {
  return { PATH: c.binDir, HOME: '/nonexistent-home', XDG_CONFIG_HOME: config };
}

/** GET /v2/ on `registry` with these options: 'ok' (any HTTP answer) or the error code. */
async function reach(registry: string, opts: object): Promise<string> {
  const s = new RegistrySession({ ...opts, retry: { attempts: 1 } });
  try {
    const res = await s.client(registry).request({ method: 'GET', url: '/v2/', scopes: [] });
    await res.arrayBuffer();
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  } finally {
    s.close();
  }
}

test('--insecure and --ca-file come first and ask nothing', async () => {
  cluster.setIdpbuilderCert(gitea.certPem);
  const i = await resolveGiteaTrust({ registry: gitea.registry, insecure: true, env: env() });
  assert.equal(i, { registry: { insecureRegistries: [gitea.registry] }, source: '--insecure', warnings: [] });
  const c = await resolveGiteaTrust({ registry: gitea.registry, caFile: gitea.caFile, env: env() });
  assert.equal(c, { registry: { caFile: gitea.caFile }, source: '--ca-file', warnings: [] });
  assert.equal(cluster.calls(), []);
  assert.not.ok(existsSync(cachedCertPath(gitea.registry, env())), 'nothing kept');
});

test('the cluster certificate (ingress-nginx/idpbuilder-cert) is kept under certs.d, XDG_CONFIG_HOME honoured, and trusts the registry', async () => {
  cluster.setIdpbuilderCert(gitea.certPem);
  const t = await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  const kept = join(config, 'ocistack', 'certs.d', gitea.registry, 'ca.crt');
  assert.is(t.source, `kubectl secret ingress-nginx/idpbuilder-cert (kept in ${kept})`);
  assert.equal(t.warnings, []);
  assert.equal(t.registry, { certDir: join(config, 'ocistack', 'certs.d') });
  assert.is(readFileSync(kept, 'utf8'), gitea.certPem);
  assert.equal(readdirSync(join(config, 'ocistack', 'certs.d', gitea.registry)), ['ca.crt'], 'no temp file left');
  assert.is(await reach(gitea.registry, { ...t.registry, env: env() }), 'ok');
  assert.is(await reach(gitea.registry, { env: env() }), 'ok', 'the kept file is read from the default certs.d too');

  // Without XDG_CONFIG_HOME: ~/.config.
  const home = makeTempDir('home');
  const t2 = await resolveGiteaTrust({ registry: gitea.registry, env: { PATH: cluster.binDir, HOME: home } });
  assert.ok(t2.source.startsWith('kubectl secret'));
  assert.ok(existsSync(join(home, '.config', 'ocistack', 'certs.d', gitea.registry, 'ca.crt')));
});

test('else default/idpbuilder-cert (ca.crt)', async () => {
  cluster.setIdpbuilderCert(gitea.certPem, 'default');
  const t = await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  assert.match(t.source, /^kubectl secret default\/idpbuilder-cert \(kept in /);
  const kubectlCalls = cluster.calls().map((c) => c.args.slice(0, 5).join(' '));
  assert.equal(kubectlCalls, ['get secret -n ingress-nginx idpbuilder-cert', 'get secret -n default idpbuilder-cert']);
});

test('a kept certificate that verifies is reused without asking the cluster', async () => {
  cluster.setIdpbuilderCert(gitea.certPem);
  await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  const before = cluster.calls().length;
  const again = await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  assert.is(again.source, `cached ${cachedCertPath(gitea.registry, env())}`);
  assert.is(cluster.calls().length, before, 'kubectl not run again');
  cluster.setReachable(false);
  const offline = await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  assert.is(offline.source, again.source, 'no cluster needed');
});

test('a kept certificate that no longer verifies (cluster recreated) is refreshed from the cluster', async () => {
  const kept = cachedCertPath(gitea.registry, env());
  mkdirSync(join(kept, '..'), { recursive: true });
  writeFileSync(kept, stalePem);
  cluster.setIdpbuilderCert(gitea.certPem);
  const t = await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  assert.is(t.source, `kubectl secret ingress-nginx/idpbuilder-cert (kept in ${kept}, replacing a stale one)`);
  assert.is(readFileSync(kept, 'utf8'), gitea.certPem);
  assert.is(await reach(gitea.registry, { ...t.registry, env: env() }), 'ok');
});

test('no certificate to be had: verification skipped for the Gitea host only, with a one-line warning', async () => {
  const noKubectl = standInCluster({ kubectl: false });
  try {
    const t = await resolveGiteaTrust({ registry: gitea.registry, env: env(noKubectl) });
    assert.is(t.source, 'verification skipped');
    assert.equal(t.registry, { insecureRegistries: [gitea.registry] });
    assert.is(t.warnings.length, 1);
    assert.not.match(t.warnings[0]!, '\n');
    assert.match(t.warnings[0]!, `TLS verification skipped for ${gitea.registry} only`);
    assert.match(t.warnings[0]!, 'kubectl is not installed');
    const opts = { ...t.registry, env: env(noKubectl) };
    assert.is(await reach(gitea.registry, opts), 'ok', 'the Gitea host is reached without verification');
    // The same server under another name: still verified, and it fails.
    assert.is(tlsPolicyFor(gitea.registryHost, opts).insecure, false);
    assert.is(await reach(gitea.registryHost, opts), 'TLS', `${gitea.registryHost} is still verified`);
  } finally {
    noKubectl.remove();
  }
});

test('a stale kept certificate and no cluster: skipped with the reason; a certificate of another cluster is not kept', async () => {
  const kept = cachedCertPath(gitea.registry, env());
  mkdirSync(join(kept, '..'), { recursive: true });
  writeFileSync(kept, stalePem);
  cluster.setReachable(false);
  const t = await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  assert.is(t.source, 'verification skipped');
  assert.match(t.warnings[0]!, 'The connection to the server localhost:8080 was refused');

  cluster.setReachable(true);
  cluster.setIdpbuilderCert(stalePem);
  const o = await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  assert.is(o.source, 'verification skipped');
  assert.match(o.warnings[0]!, 'the same certificate as the kept one');
  writeFileSync(kept, 'not a certificate');
  const p = await resolveGiteaTrust({ registry: gitea.registry, env: env() });
  assert.match(p.warnings[0]!, 'does not verify');
  assert.is(readFileSync(kept, 'utf8'), 'not a certificate', 'the other cluster certificate was not kept');
});

test('plain HTTP (idpbuilder --protocol http): nothing to trust', async () => {
  const t = await resolveGiteaTrust({ registry: 'gitea.cnoe.localtest.me:8080', protocol: 'http', env: env() });
  assert.equal(t.registry, { plainHttpRegistries: ['gitea.cnoe.localtest.me:8080'] });
  assert.equal(cluster.calls(), []);
});

test.run();
