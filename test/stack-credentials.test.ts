/**
 * Credentials for the stack's Gitea (lib/stack/credentials.ts), the first
 * source that has some: --creds, OCISTACK_USERNAME/PASSWORD, `idpbuilder get
 * secrets`, kubectl's gitea/gitea-credential, the auth files of `ocistack
 * login`; the source is named and the secret appears nowhere else.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { storeCredentials } from '../lib/registry/credentials.js';
import { parseIdpbuilderSecrets, parseKubectlSecret, resolveGiteaCredentials } from '../lib/stack/credentials.js';
import { standInCluster, type StandInCluster } from './helpers/stand-ins.js';
import { makeTempDir } from './helpers/tools.js';

const REG = 'gitea.cnoe.localtest.me:8443';
const CLUSTER_PW = 'cluster-Secret-9f3e';
const CLUSTER_TOKEN = 'tok-5d1c77aa';

let cluster: StandInCluster;
let home: string;
test.before.each(() => {
  cluster = standInCluster();
  cluster.setGiteaCredential({ username: 'giteaAdmin', password: CLUSTER_PW, token: CLUSTER_TOKEN });
  home = makeTempDir('creds-home');
});
test.after.each(() => {
  cluster.remove();
});

/** An env with the stand-ins on PATH and its own HOME (auth files), plus `extra`. */
function env(c: StandInCluster, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: c.binDir, HOME: home, ...extra };
}

/** Everything but the credentials themselves, as one string, to look for secrets in. */
function visible(r: { source: string; tried: string[] }): string {
  return JSON.stringify({ source: r.source, tried: r.tried });
}

function noSecretIn(text: string): void {
  for (const s of [CLUSTER_PW, CLUSTER_TOKEN, 'env-pw-77', 'flag-pw-11', 'file-pw-22']) assert.not.match(text, s, `a secret in: ${text}`);
}

test('--creds come first', async () => {
  const r = await resolveGiteaCredentials({ registry: REG, credentials: { username: 'me', password: 'flag-pw-11' }, env: env(cluster, { OCISTACK_USERNAME: 'u', OCISTACK_PASSWORD: 'env-pw-77' }) });
  assert.equal(r.credentials, { username: 'me', password: 'flag-pw-11' });
  assert.is(r.source, '--creds');
  assert.equal(cluster.calls(), [], 'no cluster tool run');
});

test('then OCISTACK_USERNAME/OCISTACK_PASSWORD', async () => {
  const r = await resolveGiteaCredentials({ registry: REG, env: env(cluster, { OCISTACK_USERNAME: 'u', OCISTACK_PASSWORD: 'env-pw-77' }) });
  assert.equal(r.credentials, { username: 'u', password: 'env-pw-77' });
  assert.is(r.source, 'OCISTACK_USERNAME/OCISTACK_PASSWORD');
  assert.equal(cluster.calls(), []);
});

test('then idpbuilder get secrets (password before token)', async () => {
  const r = await resolveGiteaCredentials({ registry: REG, env: env(cluster, { OCISTACK_USERNAME: 'u' }) });
  assert.equal(r.credentials, { username: 'giteaAdmin', password: CLUSTER_PW });
  assert.is(r.source, 'idpbuilder get secrets');
  assert.equal(r.tried, ['OCISTACK_USERNAME: set without OCISTACK_PASSWORD']);
  assert.equal(cluster.calls().map((c) => [c.tool, ...c.args]), [['idpbuilder', 'get', 'secrets', '-p', 'gitea', '-o', 'json']]);
  noSecretIn(visible(r));
});

test('then kubectl secret gitea/gitea-credential when idpbuilder is not installed', async () => {
  const noIdp = standInCluster({ idpbuilder: false });
  try {
    noIdp.setGiteaCredential({ username: 'giteaAdmin', password: CLUSTER_PW, token: CLUSTER_TOKEN });
    const r = await resolveGiteaCredentials({ registry: REG, env: env(noIdp) });
    assert.equal(r.credentials, { username: 'giteaAdmin', password: CLUSTER_PW });
    assert.is(r.source, 'kubectl secret gitea/gitea-credential');
    assert.equal(r.tried, ['OCISTACK_USERNAME/OCISTACK_PASSWORD: not set', 'idpbuilder get secrets: idpbuilder is not installed']);
    noSecretIn(visible(r));
  } finally {
    noIdp.remove();
  }
});

test('then the auth files of ocistack login when the cluster is not reachable', async () => {
  cluster.setReachable(false);
  const e = env(cluster);
  const file = await storeCredentials(REG, { username: 'giteaAdmin', password: 'file-pw-22' }, e);
  assert.is(file, join(home, '.docker', 'config.json'));
  const r = await resolveGiteaCredentials({ registry: REG, env: e });
  assert.equal(r.credentials, { username: 'giteaAdmin', password: 'file-pw-22' });
  assert.is(r.source, `auth file ${file} (auths)`);
  assert.is(r.tried.length, 3);
  assert.match(r.tried[1]!, /^idpbuilder get secrets: Error: getting secret gitea-credential in gitea: .*connection refused$/);
  assert.is(r.tried[2], 'kubectl secret gitea/gitea-credential: The connection to the server localhost:8080 was refused - did you specify the right host or port?');
  noSecretIn(visible(r));
});

test('nothing anywhere: none, with every source tried', async () => {
  cluster.removeSecret('gitea', 'gitea-credential');
  const r = await resolveGiteaCredentials({ registry: REG, env: env(cluster) });
  assert.is(r.credentials, undefined);
  assert.is(r.source, 'none');
  assert.equal(r.tried, [
    'OCISTACK_USERNAME/OCISTACK_PASSWORD: not set',
    'idpbuilder get secrets: no secrets found',
    'kubectl secret gitea/gitea-credential: Error from server (NotFound): secrets "gitea-credential" not found',
    `auth files: nothing for ${REG}`,
  ]);
});

test('the token when the secret has no password; giteaAdmin when it names no user', async () => {
  cluster.setGiteaCredential({ token: CLUSTER_TOKEN });
  const r = await resolveGiteaCredentials({ registry: REG, env: env(cluster) });
  assert.equal(r.credentials, { username: 'giteaAdmin', password: CLUSTER_TOKEN });
  assert.is(r.source, 'idpbuilder get secrets');
});

test('output that is not what idpbuilder/kubectl print is reported without quoting it', () => {
  const junk = `{"password": "${CLUSTER_PW}"`;
  const a = parseIdpbuilderSecrets(junk);
  const b = parseKubectlSecret(junk);
  assert.is(a, 'its output is not JSON');
  assert.is(b, 'its output is not JSON');
  assert.is(parseIdpbuilderSecrets(JSON.stringify({ password: CLUSTER_PW })), 'its output is not a JSON array');
  assert.is(parseIdpbuilderSecrets(JSON.stringify([{ IsCore: true, name: 'argocd-initial-admin-secret', namespace: 'argocd', username: 'admin', password: CLUSTER_PW }])), 'no gitea/gitea-credential entry');
  assert.is(parseIdpbuilderSecrets('no secrets found\n'), 'no secrets found');
  assert.equal(parseIdpbuilderSecrets(JSON.stringify([{ IsCore: true, name: 'gitea-credential', namespace: 'gitea', username: 'giteaAdmin', password: 'p' }])), { username: 'giteaAdmin', password: 'p' });
});

test.run();
