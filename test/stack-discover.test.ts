/**
 * discoverStack (lib/stack/discover.ts, apps.ts): a stack directory read the
 * way idpbuilder reads it (top-level files, first document, argoproj.io
 * kinds, cnoe:// in the places idpbuilder rewrites), its Dockerfiles, and
 * image names checked against Gitea's rules before anything is built.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { discoverStack } from '../lib/stack/discover.js';
import { copyStack, rejectsWith, writeFiles } from './helpers/stacks.js';
import { makeTempDir } from './helpers/tools.js';

const app = (name: string, spec: string): string =>
  `apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

test('the reference stack: apps, their cnoe:// directories with line:column, first documents only', async () => {
  const root = copyStack('ref');
  const m = await discoverStack({ dir: root });
  assert.is(m.root, root);
  assert.equal(m.apps.map((a) => [a.kind, a.name]), [['Application', 'hello'], ['Application', 'web'], ['ApplicationSet', 'workers']],
    'not-an-app.yaml (a ConfigMap) and the second document of workers.yaml are not apps');
  const dirs = (name: string) => m.apps.find((a) => a.name === name)!.cnoeDirs.map((c) => `${relative(root, c.dir)} ${relative(root, c.location.file)}:${c.location.line}:${c.location.column}`);
  assert.equal(dirs('hello'), ['hello/manifests hello.yaml:10:14']);
  assert.equal(dirs('web'), ['web/chart web.yaml:10:16', 'web/values web.yaml:20:19'], 'sources[] and a string inside helm.valuesObject');
  assert.equal(dirs('workers'), ['workers workers.yaml:10:18', 'workers-config workers.yaml:17:24'],
    'git generator, one inside matrix, and the template source (same dir, listed once)');
  const web = m.apps.find((a) => a.name === 'web')!;
  assert.equal(web.valueFiles!.map((v) => relative(root, v.file)), ['web/values/values-prod.yaml'], '$values/ resolved through the source with ref: values');
});

test('the reference stack: images from Dockerfile, Containerfile, NAME.Dockerfile and ocistack.yaml, with default tags', async () => {
  const root = copyStack('ref');
  // What discovery must not pick up: node_modules, and a symlink to a directory outside the stack.
  writeFiles(root, { 'hello/node_modules/dep/Dockerfile': 'FROM scratch\n' });
  const outside = makeTempDir('stack-outside');
  writeFiles(outside, { 'evil/Dockerfile': 'FROM scratch\n' });
  symlinkSync(join(outside, 'evil'), join(root, 'evil'));
  const m = await discoverStack({ dir: root });
  const rows = m.images.map((i) => [i.name, relative(root, i.context) || '.', relative(root, i.dockerfile), i.tags.join(','), i.origin.kind]);
  assert.equal(rows, [
    ['team/api', 'services/api', 'services/api/Dockerfile', 'v2,latest', 'config'],
    ['hello', 'hello', 'hello/Dockerfile', '0.1', 'discovered'],
    ['tools', 'tools', 'tools/Dockerfile', 'latest', 'discovered'],
    ['frontend', 'web', 'web/frontend.Dockerfile', '1.2.0', 'discovered'],
    ['worker', 'workers/worker', 'workers/worker/Containerfile', '3', 'discovered'],
  ]);
  const api = m.images[0]!;
  assert.is(api.target, 'runtime');
  assert.equal(api.buildArgs, { VERSION: '1.10', FLAVOUR: 'slim' });
  assert.is(api.platform, 'linux/amd64');
  assert.equal(api.origin, { kind: 'config', location: { file: join(root, 'ocistack.yaml'), line: 4, column: 5 } });
});

test('ocistack.yaml overrides a discovered image with the same Dockerfile or the same name', async () => {
  const root = makeTempDir('stack-override');
  writeFiles(root, {
    'a.yaml': app('a', '  source:\n    repoURL: cnoe://svc\n'),
    'svc/Dockerfile': 'FROM scratch\n',
    'other/svc/Dockerfile': 'FROM scratch\n',
    'ocistack.yaml': 'version: 1\nimages:\n  - name: renamed\n    context: svc\n',
  });
  let m = await discoverStack({ dir: root });
  assert.equal(m.images.map((i) => [i.name, relative(root, i.dockerfile), i.origin.kind]), [
    ['renamed', 'svc/Dockerfile', 'config'],
    ['svc', 'other/svc/Dockerfile', 'discovered'],
  ], 'svc/Dockerfile is the config entry now, so other/svc keeps the name svc');
  writeFileSync(join(root, 'ocistack.yaml'), 'version: 1\nimages:\n  - name: svc\n    context: other/svc\n');
  m = await discoverStack({ dir: root });
  assert.equal(m.images.map((i) => [i.name, relative(root, i.dockerfile), i.origin.kind]), [['svc', 'other/svc/Dockerfile', 'config']],
    'the entry named svc replaces the discovered svc');
  await rejectsWith(discoverStack({ dir: root, config: false }), 'STACK_IMAGE_NAME'); // without it, two Dockerfiles want the name svc
});

test('a bad default name fails before any work, naming the Dockerfile and the ocistack.yaml fix; the fix works', async () => {
  const root = copyStack('bad-name');
  const e = await rejectsWith(discoverStack({ dir: root }), 'STACK_IMAGE_NAME');
  assert.match(e.where, /My_App\/Dockerfile:1$/);
  assert.match(e.message, /"My_App" has capital letters/);
  assert.match(e.hint!, /ocistack\.yaml/);
  assert.match(e.hint!, /name: my_app, context: My_App/);
  writeFileSync(join(root, 'ocistack.yaml'), 'version: 1\nimages:\n  - name: my_app\n    context: My_App\n');
  const m = await discoverStack({ dir: root });
  assert.equal(m.images.map((i) => i.name), ['my_app']);
});

test('names Gitea refuses though the OCI grammar allows them (a__b, a--b) fail; NAME.Dockerfile names the image', async () => {
  for (const dir of ['a__b', 'a--b', 'Caps', 'x.']) {
    const root = makeTempDir('stack-names');
    writeFiles(root, { [`${dir}/Dockerfile`]: 'FROM scratch\n' });
    await rejectsWith(discoverStack({ dir: root }), 'STACK_IMAGE_NAME');
  }
  const root = makeTempDir('stack-names');
  writeFiles(root, { 'svc/api.Dockerfile': 'FROM scratch\n', 'svc/Dockerfile': 'FROM scratch\n', 'svc/Dockerfile.dev': 'FROM scratch\n' });
  const m = await discoverStack({ dir: root });
  assert.equal(m.images.map((i) => [i.name, relative(root, i.dockerfile)]), [['svc', 'svc/Dockerfile'], ['api', 'svc/api.Dockerfile']].sort((a, b) => (a[1]! < b[1]! ? -1 : 1)),
    'Dockerfile.dev is not a build file discovery picks');
});

test('two Dockerfiles with the same default name are an error naming both', async () => {
  const root = makeTempDir('stack-twins');
  writeFiles(root, { 'a/svc/Dockerfile': 'FROM scratch\n', 'b/svc/Containerfile': 'FROM scratch\n' });
  const e = await rejectsWith(discoverStack({ dir: root }), 'STACK_IMAGE_NAME');
  assert.match(e.message, /a\/svc\/Dockerfile and .*b\/svc\/Containerfile/);
  assert.match(e.hint!, /ocistack\.yaml/);
});

test('a cnoe:// path to a file or to nothing is STACK_CNOE_PATH at file:line:column (idpbuilder fails that app)', async () => {
  const root = copyStack('cnoe-file');
  let e = await rejectsWith(discoverStack({ dir: root }), 'STACK_CNOE_PATH');
  assert.match(e.where, /cnoe-file\/app\.yaml:8:14$/);
  assert.match(e.message, /not a directory/);
  writeFileSync(join(root, 'app.yaml'), app('app', '  sources:\n    - repoURL: https://example.com/x.git\n    - repoURL: cnoe://gone\n'));
  e = await rejectsWith(discoverStack({ dir: root }), 'STACK_CNOE_PATH');
  assert.match(e.where, /app\.yaml:8:16$/);
  assert.match(e.message, /does not exist/);
});

test('idpbuilder\'s limits: top-level regular files only, source ignored when sources is set, matrix one level deep', async () => {
  const root = makeTempDir('stack-limits');
  const outside = makeTempDir('stack-limits-out');
  writeFiles(outside, { 'linked.yaml': app('linked', '  source:\n    repoURL: cnoe://nowhere\n') });
  writeFiles(root, {
    'multi.yaml': app('multi', '  source:\n    repoURL: cnoe://nowhere\n  sources:\n    - repoURL: cnoe://one\n'),
    'one/x.yaml': 'a: 1\n',
    'two/x.yaml': 'a: 1\n',
    'deep.yml': 'apiVersion: argoproj.io/v1beta9\nkind: ApplicationSet\nmetadata:\n  name: deep\nspec:\n  generators:\n    - matrix:\n        generators:\n          - git: { repoURL: cnoe://two }\n          - matrix:\n              generators:\n                - git: { repoURL: cnoe://nowhere }\n',
    'nested/app.yaml': app('nested', '  source:\n    repoURL: cnoe://nowhere\n'),
    'other.json': '{}',
    'broken.yaml': 'apiVersion: argoproj.io/v1alpha1\nkind: [Application\n',
    'Upper.YAML': app('upper', '  source:\n    repoURL: cnoe://nowhere\n'),
  });
  symlinkSync(join(outside, 'linked.yaml'), join(root, 'linked.yaml'));
  const m = await discoverStack({ dir: root });
  assert.equal(m.apps.map((a) => [a.name, a.cnoeDirs.map((c) => relative(root, c.dir))]), [['deep', ['two']], ['multi', ['one']]]);
  assert.equal(m.warnings.filter((w) => w.message.includes('YAML syntax')).map((w) => `${relative(root, w.location!.file)}:${w.location!.line}`), ['broken.yaml:3'],
    'a top-level file idpbuilder cannot decode is a warning, not an error');
});

test('a cnoe:// directory outside the stack (cnoe://../base/x) is used, and its Dockerfiles found', async () => {
  const top = makeTempDir('stack-outside-base');
  writeFiles(top, {
    'base/svc/Dockerfile': 'FROM scratch\n',
    'base/svc/deploy.yaml': 'image: gitea.cnoe.localtest.me:8443/giteaadmin/svc:7\n',
    'stack/app.yaml': app('app', '  source:\n    repoURL: cnoe://../base/svc\n'),
  });
  const m = await discoverStack({ dir: join(top, 'stack') });
  assert.equal(m.images.map((i) => [i.name, i.tags, i.usedBy.length]), [['svc', ['7'], 1]]);
});

test('the stack directory must exist and be a directory (usage error)', async () => {
  const root = makeTempDir('stack-missing');
  let e = await rejectsWith(discoverStack({ dir: join(root, 'nope') }), 'STACK_DIR');
  assert.is(e.exitCode, 2);
  writeFileSync(join(root, 'f'), '');
  e = await rejectsWith(discoverStack({ dir: join(root, 'f') }), 'STACK_DIR');
  rmSync(join(root, 'f'));
  mkdirSync(join(root, 'empty'));
  const m = await discoverStack({ dir: join(root, 'empty') });
  assert.equal([m.apps, m.images, m.unmatched, m.warnings], [[], [], [], []]);
});

test.run();
