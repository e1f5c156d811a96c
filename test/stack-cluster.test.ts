/**
 * Where the stack's Gitea is (lib/stack/cluster.ts resolveGiteaTarget):
 * idpbuilder's flags, else the cluster's Localbuild object read with the
 * stand-in kubectl, else idpbuilder's defaults, with the source recorded.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { resolveGiteaTarget } from '../lib/stack/cluster.js';
import { OcistackError } from '../lib/errors.js';
import { standInCluster, type StandInCluster } from './helpers/stand-ins.js';

let cluster: StandInCluster;
test.before.each(() => {
  cluster = standInCluster();
});
test.after.each(() => {
  cluster.remove();
});

async function rejects(p: Promise<unknown>): Promise<OcistackError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, OcistackError);
    return e as OcistackError;
  }
  throw new Error('expected a rejection');
}

test('flags give host, port and path routing; the cluster is not asked', async () => {
  cluster.setLocalbuilds([{ host: 'other.example.test', port: '9999' }]);
  const t = await resolveGiteaTarget({ host: 'idp.example.test', port: 9443, env: cluster.env() });
  assert.equal(t, { host: 'idp.example.test', port: 9443, pathRouting: false, registry: 'gitea.idp.example.test:9443', owner: 'giteaadmin', source: 'flags' });
  const p = await resolveGiteaTarget({ host: 'IDP.Example.Test', port: '9443', pathRouting: true, env: cluster.env() });
  assert.is(p.registry, 'idp.example.test:9443', 'path routing: the bare host (lowercased as idpbuilder does)');
  assert.is(p.pathRouting, true);
  const only = await resolveGiteaTarget({ port: 8444, env: cluster.env() });
  assert.is(only.registry, 'gitea.cnoe.localtest.me:8444', 'the flags not given take idpbuilder defaults');
  assert.equal(cluster.calls(), [], 'kubectl was not run');
});

test('bad flags are usage errors (exit 2)', async () => {
  for (const bad of [{ port: 0 }, { port: 70000 }, { port: '84x3' }, { host: 'bad host' }, { host: 'a/b' }]) {
    const e = await rejects(resolveGiteaTarget({ ...bad, env: cluster.env() }));
    assert.is(e.code, 'USAGE', JSON.stringify(bad));
    assert.is(e.exitCode, 2);
    assert.ok(e.hint?.includes('--port'), e.hint);
  }
});

test('no flags: the cluster localbuild object gives host, port and path routing', async () => {
  cluster.setLocalbuilds([{ name: 'localdev', host: 'idp.example.test', port: '9443', usePathRouting: true }]);
  const t = await resolveGiteaTarget({ env: cluster.env() });
  assert.equal(t, {
    host: 'idp.example.test', port: 9443, pathRouting: true, registry: 'idp.example.test:9443', owner: 'giteaadmin', source: 'cluster', sourceDetail: 'localbuild localdev',
  });
  const [call] = cluster.calls();
  assert.equal(call, { tool: 'kubectl', args: ['get', 'localbuilds.idpbuilder.cnoe.io', '-o', 'json', '--request-timeout=10s'] });

  cluster.setLocalbuilds([{ port: '8443' }]);
  const d = await resolveGiteaTarget({ env: cluster.env() });
  assert.is(d.registry, 'gitea.cnoe.localtest.me:8443', 'fields the object leaves empty take the defaults');
  assert.is(d.source, 'cluster');

  cluster.setLocalbuilds([{ host: 'cnoe.localtest.me', port: '8080', protocol: 'http' }]);
  const h = await resolveGiteaTarget({ env: cluster.env() });
  assert.is(h.protocol, 'http');
  assert.is(h.registry, 'gitea.cnoe.localtest.me:8080');
});

test('several localbuilds: the same settings are fine, different ones are an error naming them', async () => {
  cluster.setLocalbuilds([{ name: 'a', port: '8443' }, { name: 'b', port: '8443' }]);
  const t = await resolveGiteaTarget({ env: cluster.env() });
  assert.is(t.registry, 'gitea.cnoe.localtest.me:8443');
  assert.is(t.sourceDetail, 'localbuilds a, b');

  cluster.setLocalbuilds([{ name: 'a', port: '8443' }, { name: 'b', port: '9443', usePathRouting: true }]);
  const e = await rejects(resolveGiteaTarget({ env: cluster.env() }));
  assert.is(e.code, 'STACK_CLUSTER_AMBIGUOUS');
  assert.match(e.message, 'a (gitea.cnoe.localtest.me:8443)');
  assert.match(e.message, 'b (cnoe.localtest.me:9443)');
  assert.match(e.hint ?? '', '--use-path-routing');
});

test('a localbuild with a bad port is an error that says how to get around it', async () => {
  cluster.setLocalbuilds([{ name: 'localdev', port: 'eighty' }]);
  const e = await rejects(resolveGiteaTarget({ env: cluster.env() }));
  assert.is(e.code, 'STACK_CLUSTER');
  assert.match(e.message, 'localbuild localdev');
  assert.match(e.hint ?? '', '--port');
});

test('no kubectl, no cluster, no CRD, no object: the defaults, with the reason recorded', async () => {
  const defaults = { host: 'cnoe.localtest.me', port: 8443, pathRouting: false, registry: 'gitea.cnoe.localtest.me:8443', owner: 'giteaadmin', source: 'defaults' };
  const noKubectl = standInCluster({ kubectl: false });
  try {
    const t = await resolveGiteaTarget({ env: noKubectl.env() });
    assert.equal(t, { ...defaults, sourceDetail: 'kubectl is not installed' });
  } finally {
    noKubectl.remove();
  }

  cluster.setLocalbuilds([{ port: '9443' }]);
  cluster.setReachable(false);
  const down = await resolveGiteaTarget({ env: cluster.env() });
  assert.equal(down, { ...defaults, sourceDetail: 'kubectl: The connection to the server localhost:8080 was refused - did you specify the right host or port?' });

  cluster.setReachable(true);
  cluster.removeLocalbuilds();
  const noCrd = await resolveGiteaTarget({ env: cluster.env() });
  assert.is(noCrd.source, 'defaults');
  assert.match(noCrd.sourceDetail ?? '', `doesn't have a resource type "localbuilds"`);

  cluster.setLocalbuilds([]);
  const none = await resolveGiteaTarget({ env: cluster.env() });
  assert.is(none.source, 'defaults');
  assert.is(none.sourceDetail, 'no localbuilds.idpbuilder.cnoe.io object in the cluster');
});

test('an explicit kubectl path is used', async () => {
  cluster.setLocalbuilds([{ port: '7443' }]);
  const t = await resolveGiteaTarget({ env: { PATH: '/nonexistent' }, kubectl: `${cluster.binDir}/kubectl` });
  assert.is(t.registry, 'gitea.cnoe.localtest.me:7443');
});

test.run();
