/**
 * Digest pinning (lib/stack/pin.ts): pinReferences says what each reference
 * becomes; writePins rewrites exactly those byte ranges (whole files compared
 * before and after), refuses files changed since the scan, and replaces files
 * atomically with their mode kept.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { discoverStack } from '../lib/stack/discover.js';
import { pinReferences, writePins } from '../lib/stack/pin.js';
import { copyStack, rejectsWith } from './helpers/stacks.js';
import { walkFiles } from '../lib/stack/walk.js';

const GITEA = 'gitea.cnoe.localtest.me:8443';
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;

async function snapshot(root: string): Promise<Map<string, string>> {
  const files = await walkFiles([root], () => true);
  return new Map(files.map((f) => [relative(root, f), readFileSync(f, 'utf8')]));
}

/** `text` with each [from, to] replaced exactly once (and `from` must occur exactly once). */
function replaced(text: string, pairs: [string, string][]): string {
  for (const [from, to] of pairs) {
    assert.is(text.split(from).length, 2, `"${from}" occurs once`);
    text = text.replace(from, to);
  }
  return text;
}

test('pinReferences: registry/giteaadmin/name[:tag]@digest per reference of each pushed image', async () => {
  const root = copyStack('ref');
  const m = await discoverStack({ dir: root });
  const pins = pinReferences(m.images, { hello: D1, frontend: D2 });
  assert.equal(pins.map((p) => [p.image, relative(root, p.reference.location.file), p.pinned]), [
    ['hello', 'hello/manifests/deployment.yaml', `${GITEA}/giteaadmin/hello:0.1@${D1}`],
    ['frontend', 'web.yaml', `${GITEA}/giteaadmin/frontend:1.2.0@${D2}`],
    ['frontend', 'web/chart/values.yaml', `${GITEA}/giteaadmin/frontend:1.2.0@${D2}`],
    ['frontend', 'web/values/values-prod.yaml', `${GITEA}/giteaadmin/frontend:1.2.0@${D2}`],
  ], 'images without a digest are left out; the owner is written lowercase');
  assert.throws(() => pinReferences(m.images, new Map([['hello', 'sha256:nope']])), /not a sha256 digest/);
});

test('writePins changes exactly the pinned references: whole files compared, everything else byte for byte', async () => {
  const root = copyStack('ref');
  const before = await snapshot(root);
  const m = await discoverStack({ dir: root });
  const r = await writePins(pinReferences(m.images, { 'team/api': D3, hello: D1, frontend: D2, worker: D3 }));
  assert.equal(r.skipped, []);
  assert.equal(r.files.map((f) => relative(root, f)).sort(), [
    'hello/manifests/deployment.yaml', 'web.yaml', 'web/chart/values.yaml', 'web/values/values-prod.yaml', 'workers/kustomization.yaml',
  ]);
  const after = await snapshot(root);
  const expected = new Map(before);
  expected.set('hello/manifests/deployment.yaml', replaced(before.get('hello/manifests/deployment.yaml')!, [
    [`"${GITEA}/giteaadmin/team/api:v2" # the api`, `"${GITEA}/giteaadmin/team/api:v2@${D3}" # the api`],
    [`image: ${GITEA}/giteaadmin/hello:0.1   # built`, `image: ${GITEA}/giteaadmin/hello:0.1@${D1}   # built`],
  ]));
  expected.set('web.yaml', replaced(before.get('web.yaml')!, [[`frontend:1.2.0\n`, `frontend:1.2.0@${D2}\n`]]));
  expected.set('web/chart/values.yaml', replaced(before.get('web/chart/values.yaml')!, [[`tag: "1.2.0"   # keep`, `tag: "1.2.0@${D2}"   # keep`]]));
  expected.set('web/values/values-prod.yaml', replaced(before.get('web/values/values-prod.yaml')!, [
    [`image: ${GITEA}/giteaAdmin/frontend:1.2.0`, `image: ${GITEA}/giteaadmin/frontend:1.2.0@${D2}`],
  ]));
  expected.set('workers/kustomization.yaml', replaced(before.get('workers/kustomization.yaml')!, [
    [`    newTag: "3"   # bumped by hand\n`, `    newTag: "3"   # bumped by hand\n    digest: ${D3}\n`],
  ]));
  assert.equal([...after.keys()].sort(), [...expected.keys()].sort(), 'no file added or removed (no temp files left)');
  for (const [file, text] of expected) assert.fixture(after.get(file)!, text, file);
});

test('pinning again: same digests change nothing; new digests replace the old ones in place', async () => {
  const root = copyStack('ref');
  let m = await discoverStack({ dir: root });
  await writePins(pinReferences(m.images, { hello: D1, worker: D1, frontend: D1 }));
  const once = await snapshot(root);
  m = await discoverStack({ dir: root });
  assert.equal(m.images.find((i) => i.name === 'worker')!.usedBy[0]!.source!.edit.kind, 'digest', 'the inserted digest: is found on the next scan');
  const again = await writePins(pinReferences(m.images, { hello: D1, worker: D1, frontend: D1 }));
  assert.equal(again.files, []);
  assert.equal(await snapshot(root), once);
  const r = await writePins(pinReferences(m.images, { hello: D2, worker: D2, frontend: D2 }));
  assert.is(r.files.length, 5);
  const twice = await snapshot(root);
  for (const [file, text] of once) assert.fixture(twice.get(file)!, text.split(D1).join(D2), file);
});

test('a file changed since the scan is refused and nothing is written; file modes are kept', async () => {
  const root = copyStack('ref');
  const m = await discoverStack({ dir: root });
  const before = await snapshot(root);
  const values = join(root, 'web/chart/values.yaml');
  writeFileSync(values, `${before.get('web/chart/values.yaml')}# edited\n`);
  const e = await rejectsWith(writePins(pinReferences(m.images, { hello: D1, frontend: D1 })), 'STACK_PIN_STALE');
  assert.match(e.message, /values\.yaml changed since the stack was scanned/);
  assert.equal((await snapshot(root)).get('hello/manifests/deployment.yaml'), before.get('hello/manifests/deployment.yaml'), 'other files untouched too');

  const fresh = await discoverStack({ dir: root });
  chmodSync(join(root, 'hello/manifests/deployment.yaml'), 0o640);
  await writePins(pinReferences(fresh.images, { hello: D1 }));
  assert.is(statSync(join(root, 'hello/manifests/deployment.yaml')).mode & 0o777, 0o640);
  assert.equal(readdirSync(join(root, 'hello/manifests')), ['deployment.yaml']);
});

test('references that cannot be edited in place are reported as skipped, not guessed at', async () => {
  const root = copyStack('ref');
  writeFileSync(join(root, 'web/chart/values.yaml'), `image:\n  repository: ${GITEA}/giteaadmin/frontend\n`);
  const m = await discoverStack({ dir: root });
  const r = await writePins(pinReferences(m.images, { frontend: D1 }));
  assert.equal(r.skipped.map((s) => [relative(root, s.pin.reference.location.file), s.reason]), [
    ['web/chart/values.yaml', 'no plain tag: value next to repository: (add "tag:" to pin it)'],
  ]);
  assert.is(readFileSync(join(root, 'web/chart/values.yaml'), 'utf8'), `image:\n  repository: ${GITEA}/giteaadmin/frontend\n`);
  assert.is(r.written.length, 2);
});

test.run();
