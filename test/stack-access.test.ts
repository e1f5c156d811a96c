/**
 * Zero set-up end to end (lib/stack/cluster.ts resolveGiteaAccess +
 * check.ts checkGiteaAccess): with only the stand-in kubectl/idpbuilder
 * describing the cluster, ocistack finds the registry name, the giteaAdmin
 * credentials and idpbuilder's certificate, checks them with a real token
 * round-trip, builds and pushes through TLS + Gitea-like tokens, and skopeo
 * reads the image back trusting the kept certificate. Once under
 * gitea.cnoe.localtest.me:<port>, once behind path routing at
 * cnoe.localtest.me:<port>. The password appears in no output or error.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, OcistackError } from '../lib/index.js';
import type { ProgressEvent } from '../lib/index.js';
import { checkGiteaAccess, resolveGiteaAccess } from '../lib/index.js';
import type { GiteaAccess } from '../lib/index.js';
import { freePort } from './helpers/registry.js';
import { startGiteaRegistry, type GiteaTestRegistry } from './helpers/gitea-registry.js';
import { standInCluster, type StandInCluster } from './helpers/stand-ins.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';

let gitea: GiteaTestRegistry;
let routed: GiteaTestRegistry;
let cluster: StandInCluster;
let home: string;

test.before(async () => {
  [gitea, routed] = await Promise.all([startGiteaRegistry(), startGiteaRegistry({ pathRouting: true })]);
});
test.after(async () => {
  await Promise.all([gitea?.stop(), routed?.stop()]);
});
test.before.each(() => {
  cluster = standInCluster();
  home = makeTempDir('access-home');
});
test.after.each(() => {
  cluster.remove();
});

/** The cluster `idpbuilder create --port <port> [--use-path-routing]` would leave behind for this registry. */
function clusterFor(reg: GiteaTestRegistry, c: StandInCluster = cluster): void {
  c.setLocalbuilds([{ name: 'localdev', host: 'cnoe.localtest.me', port: String(reg.port), usePathRouting: reg.pathRouting }]);
  c.setGiteaCredential({ username: 'giteaAdmin', password: reg.password, token: 'a-token-that-is-not-used' });
  c.setIdpbuilderCert(reg.certPem);
}

function env(c: StandInCluster = cluster): NodeJS.ProcessEnv {
  return { PATH: c.binDir, HOME: home, XDG_CONFIG_HOME: join(home, '.config') };
}

/** Everything a user could see of an access (not `credentials` and the registry options that carry them). */
function shown(a: GiteaAccess): string {
  return JSON.stringify({ target: a.target, credentialSource: a.credentialSource, trustSource: a.trustSource, warnings: a.warnings, tried: a.credentialsTried });
}

function context(name: string): string {
  const dir = makeTempDir(`ctx-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'hello.txt'), `hello from ${name}\n`);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\n');
  return dir;
}

async function rejects(p: Promise<unknown>): Promise<OcistackError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, OcistackError);
    return e as OcistackError;
  }
  throw new Error('expected a rejection');
}

/** Resolve, check, build + push, then skopeo inspect with the kept certificate. */
async function pushWithNothingGiven(reg: GiteaTestRegistry, name: string): Promise<void> {
  clusterFor(reg);
  const access = await resolveGiteaAccess({ env: env() });
  assert.is(access.target.registry, reg.registry);
  assert.is(access.target.source, 'cluster');
  assert.is(access.credentialSource, 'idpbuilder get secrets');
  assert.equal(access.credentials, { username: 'giteaAdmin', password: reg.password });
  assert.match(access.trustSource, /^kubectl secret ingress-nginx\/idpbuilder-cert \(kept in /);
  assert.equal(access.warnings, []);
  assert.equal(access.registry.insecureRegistries, undefined, 'verified');
  assert.equal(Object.keys(access.registry.credentialsByHost ?? {}), [reg.registry], 'credentials for the Gitea host only');
  assert.equal(access.registry.credentialsFor, [reg.registry]);
  assert.not.match(shown(access), reg.password);

  await checkGiteaAccess(access);
  const events: ProgressEvent[] = [];
  const ref = `${reg.registry}/${access.target.owner}/${name}:1`;
  const r = await build({ context: context(name), tags: [ref], push: true, registry: { ...access.registry, onProgress: (e) => events.push(e) }, env: env() });
  assert.equal(r.pushed, [ref]);
  assert.not.match(JSON.stringify(events), reg.password, 'the password in a progress event');

  const tokenUsers = reg.token!.requests().map((q) => q.user).filter(Boolean);
  assert.ok(tokenUsers.includes('giteaAdmin'), 'tokens were asked for as giteaAdmin');

  const certDir = join(home, '.config', 'ocistack', 'certs.d', reg.registry);
  const out = await run(requireTool('skopeo'), ['inspect', '--raw', '--cert-dir', certDir, '--creds', `giteaAdmin:${reg.password}`, `docker://${ref}`], { check: true, redact: [reg.password] });
  const manifest = JSON.parse(out.stdout) as { layers: unknown[] };
  assert.is(manifest.layers.length, 1);
  const digest = await run(requireTool('skopeo'), ['inspect', '--format', '{{.Digest}}', '--cert-dir', certDir, '--creds', `giteaAdmin:${reg.password}`, `docker://${ref}`], { check: true, redact: [reg.password] });
  assert.is(digest.stdout.trim(), r.manifestDigest);
}

test('gitea.cnoe.localtest.me:<port>: target, credentials and certificate found from the cluster alone; build, push, skopeo reads it', async () => {
  await pushWithNothingGiven(gitea, 'hello');
});

test('path routing (cnoe.localtest.me:<port>, only /v2 to Gitea): the same with nothing given', async () => {
  await pushWithNothingGiven(routed, 'routed');
});

test('purpose list: only the target, nothing else asked', async () => {
  clusterFor(gitea);
  const a = await resolveGiteaAccess({ env: env(), purpose: 'list' });
  assert.is(a.target.registry, gitea.registry);
  assert.is(a.credentials, undefined);
  assert.equal(cluster.calls().map((c) => c.tool), ['kubectl']);
});

test('wrong password: REGISTRY_AUTH naming the registry, the source and the fix; no password anywhere', async () => {
  clusterFor(gitea);
  cluster.setGiteaCredential({ username: 'giteaAdmin', password: 'wrong-Pw-31337' });
  const a = await resolveGiteaAccess({ env: env() });
  const e = await rejects(checkGiteaAccess(a));
  assert.is(e.code, 'REGISTRY_AUTH');
  assert.is(e.registry, gitea.registry);
  assert.match(e.message, `${gitea.registry} rejected the credentials from idpbuilder get secrets`);
  assert.match(e.hint ?? '', 'idpbuilder get secrets -p gitea');
  const text = `${e.format()}\n${e.stack}\n${String((e.cause as Error | undefined)?.message)}`;
  assert.not.match(text, 'wrong-Pw-31337');
  assert.not.match(text, gitea.password);
});

test('no credentials anywhere: REGISTRY_AUTH listing what was tried', async () => {
  clusterFor(gitea);
  cluster.removeSecret('gitea', 'gitea-credential');
  const a = await resolveGiteaAccess({ env: env() });
  assert.is(a.credentialSource, 'none');
  const e = await rejects(checkGiteaAccess(a));
  assert.is(e.code, 'REGISTRY_AUTH');
  assert.match(e.message, `no credentials for ${gitea.registry} (tried: `);
  assert.match(e.message, 'idpbuilder get secrets: no secrets found');
  assert.match(e.hint ?? '', '--creds giteaAdmin:PASSWORD');
});

test('certificate not trusted: TLS naming the registry, where trust came from, and the fixes', async () => {
  clusterFor(gitea);
  const a = await resolveGiteaAccess({ env: env(), caFile: gitea.certs.otherCaFile });
  assert.is(a.trustSource, '--ca-file');
  const e = await rejects(checkGiteaAccess(a));
  assert.is(e.code, 'TLS');
  assert.match(e.message, `the certificate of ${gitea.registry} is not trusted (trust from: --ca-file)`);
  assert.match(e.hint ?? '', 'idpbuilder-cert');
  assert.match(e.hint ?? '', '--insecure');
});

test('nothing listening: REGISTRY_UNREACHABLE asking whether idpbuilder runs', async () => {
  const port = await freePort();
  clusterFor(gitea);
  cluster.setLocalbuilds([{ port: String(port) }]);
  const a = await resolveGiteaAccess({ env: env() });
  assert.is(a.target.registry, `gitea.cnoe.localtest.me:${port}`);
  const e = await rejects(checkGiteaAccess(a));
  assert.is(e.code, 'REGISTRY_UNREACHABLE');
  assert.match(e.message, `nothing answers at https://gitea.cnoe.localtest.me:${port}`);
  assert.match(e.message, 'localbuild localdev');
  assert.match(e.hint ?? '', 'is idpbuilder running? idpbuilder create');
});

test('no cluster at all, flags and env given: pushed with verification skipped for Gitea only, one warning', async () => {
  const noTools = standInCluster({ kubectl: false, idpbuilder: false });
  try {
    const e = { ...env(noTools), OCISTACK_USERNAME: 'giteaAdmin', OCISTACK_PASSWORD: gitea.password };
    const a = await resolveGiteaAccess({ port: gitea.port, env: e });
    assert.is(a.target.source, 'flags');
    assert.is(a.credentialSource, 'OCISTACK_USERNAME/OCISTACK_PASSWORD');
    assert.is(a.trustSource, 'verification skipped');
    assert.equal(a.registry.insecureRegistries, [gitea.registry]);
    assert.is(a.warnings.length, 1);
    await checkGiteaAccess(a);
    const ref = `${gitea.registry}/giteaadmin/flags:1`;
    const r = await build({ context: context('flags'), tags: [ref], push: true, registry: a.registry, env: e });
    assert.equal(r.pushed, [ref]);
    assert.not.match(shown(a), gitea.password);
  } finally {
    noTools.remove();
  }
});

test.run();
