/**
 * `ocistack stack push` end to end through the bin, with nothing injected:
 * the real discovery reads a copy of examples/stack, the real access
 * resolver finds the Gitea registry's port, credentials and certificate
 * from stand-in kubectl/idpbuilder alone (no flags), the image is built with
 * its RUN, pushed to the IDPBuilder-like registry, read back by skopeo, run
 * by runc; `--pin --write` rewrites exactly the Deployment's reference.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGiteaRegistry, type GiteaTestRegistry } from './helpers/gitea-registry.js';
import { standInCluster, type StandInCluster } from './helpers/stand-ins.js';
import { busyboxBase, runImage } from './helpers/images.js';
import { makeTempDir, requireTool } from './helpers/tools.js';
import { ocistack, REPO_ROOT } from './helpers/cli.js';

let gitea: GiteaTestRegistry;
let cluster: StandInCluster;
let base: string;

test.before(async () => {
  requireTool('runc');
  gitea = await startGiteaRegistry();
  base = await busyboxBase(gitea, 'giteaadmin/busybox');
  cluster = standInCluster();
  cluster.setLocalbuilds([{ name: 'localdev', host: 'cnoe.localtest.me', port: String(gitea.port) }]);
  cluster.setGiteaCredential({ username: 'giteaAdmin', password: gitea.password, token: 'unused-token' });
  cluster.setIdpbuilderCert(gitea.certPem);
});
test.after(async () => {
  cluster?.remove();
  await gitea?.stop();
});

function stackCopy(): string {
  const dir = join(makeTempDir('stack-e2e'), 'stack');
  cpSync(join(REPO_ROOT, 'examples', 'stack'), dir, { recursive: true });
  // The example's manifests name idpbuilder's default port; this cluster's Gitea has another.
  const dep = join(dir, 'hello', 'manifests', 'deployment.yaml');
  cpSync(dep, `${dep}.orig`);
  const text = readFileSync(dep, 'utf8').replace('gitea.cnoe.localtest.me:8443/', `${gitea.registry}/`);
  writeFileSync(dep, text);
  return dir;
}

function env(): NodeJS.ProcessEnv {
  const home = makeTempDir('stack-e2e-home');
  // Stand-ins first on PATH (a real kubectl on the machine must not be asked); runc, mount... after them.
  return { PATH: `${cluster.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), OCISTACK_USERNAME: '', OCISTACK_PASSWORD: '' };
}

test('stack push examples/stack: found, built with its RUN, pushed with no flags, pulled and run; --pin --write rewrites the reference', async () => {
  const dir = stackCopy();
  const e = env();
  const r = await ocistack(['stack', 'push', dir, '--build-arg', `BASE=${base}`, '--progress', 'plain', '--pin', '--write'], { env: e });
  const all = r.stdout + r.stderr;
  assert.is(r.code, 0, all);
  assert.not.ok(all.includes(gitea.password), 'the password appears in the output');
  assert.match(all, /registry gitea\.cnoe\.localtest\.me:\d+\/giteaadmin \(from cluster\)/, all);
  assert.match(all, /gitea-credential|idpbuilder get secrets/, all);
  assert.match(all, /idpbuilder-cert/, all);
  const ref = `${gitea.registry}/giteaadmin/hello:latest`;
  const out = await runImage(ref, { registry: gitea, args: ['sh', '-c', 'cat /www/build.txt'] });
  assert.is(out.code, 0, out.stderr);
  assert.match(out.stdout, /^built on \S+ by a RUN step$/m);
  // --pin --write: only the image reference changed, to the pushed digest.
  const dep = join(dir, 'hello', 'manifests', 'deployment.yaml');
  const after = readFileSync(dep, 'utf8');
  const before = readFileSync(`${dep}.orig`, 'utf8').replace('gitea.cnoe.localtest.me:8443/', `${gitea.registry}/`);
  const m = /@(sha256:[0-9a-f]{64})/.exec(after);
  assert.ok(m, after);
  assert.is(after, before.replace(`${ref}`, `${ref}@${m![1]}`));
  assert.match(r.stdout, new RegExp(m![1]!.slice(7, 19)));
});

test('stack push with a wrong password from the cluster: exit 1, the registry named, the password nowhere', async () => {
  const dir = stackCopy();
  cluster.setGiteaCredential({ username: 'giteaAdmin', password: 'wrong-password-123', token: '' });
  try {
    const r = await ocistack(['stack', 'push', dir, '--build-arg', `BASE=${base}`], { env: env() });
    const all = r.stdout + r.stderr;
    assert.is(r.code, 1, all);
    assert.ok(all.includes(gitea.registry), all);
    assert.not.ok(all.includes('wrong-password-123'), all);
  } finally {
    cluster.setGiteaCredential({ username: 'giteaAdmin', password: gitea.password, token: 'unused-token' });
  }
});

test.run();
