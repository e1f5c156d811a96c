/**
 * References to the stack's registry (lib/stack/references.ts): every shape
 * (container image strings, Helm `image: {repository, tag}` and `image: "ref"`,
 * kustomization `images:`), in multi-document files, with the exact
 * file:line:column and text; tied to the stack's images by discoverStack.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { join, relative } from 'node:path';
import { discoverStack } from '../lib/stack/discover.js';
import { parseStackReference, scanFile, scanReferences } from '../lib/stack/references.js';
import { copyStack, writeFiles } from './helpers/stacks.js';
import { makeTempDir } from './helpers/tools.js';
import type { ManifestReference } from '../lib/stack/types.js';

const GITEA = 'gitea.cnoe.localtest.me:8443';
const D = `sha256:${'ab'.repeat(32)}`;

const row = (root: string, r: ManifestReference) =>
  [`${relative(root, r.location.file)}:${r.location.line}:${r.location.column}`, r.kind, r.text, r.repository, r.tag ?? null, r.digest ?? null, r.source!.edit.kind];

test('the reference stack: every reference, exactly where and as written', async () => {
  const root = copyStack('ref');
  const m = await discoverStack({ dir: root });
  const r = await scanReferences({ root: m.root, apps: m.apps, registries: [GITEA] });
  assert.equal(r.references.map((x) => row(root, x)), [
    ['hello/manifests/deployment.yaml:16:19', 'manifest', `${GITEA}/giteaadmin/team/api:v2`, 'giteaadmin/team/api', 'v2', null, 'reference'],
    ['hello/manifests/deployment.yaml:19:18', 'manifest', `${GITEA}/giteaadmin/hello:0.1`, 'giteaadmin/hello', '0.1', null, 'reference'],
    ['hello/manifests/deployment.yaml:22:19', 'manifest', `${GITEA}/giteaadmin/missing:1`, 'giteaadmin/missing', '1', null, 'reference'],
    ['web.yaml:18:20', 'manifest', `${GITEA}/giteaadmin/frontend:1.2.0`, 'giteaadmin/frontend', '1.2.0', null, 'reference'],
    ['web/chart/values.yaml:4:15', 'helm-values', `${GITEA}/giteaadmin/frontend`, 'giteaadmin/frontend', '1.2.0', null, 'tag'],
    ['web/values/values-prod.yaml:3:10', 'helm-values', `${GITEA}/giteaAdmin/frontend:1.2.0`, 'giteaAdmin/frontend', '1.2.0', null, 'reference'],
    ['workers/kustomization.yaml:7:14', 'kustomization', `${GITEA}/giteaadmin/worker`, 'giteaadmin/worker', '3', null, 'insert-digest'],
  ]);
  assert.equal(r.files.map((f) => relative(root, f)), [
    'hello.yaml', 'hello/manifests/deployment.yaml', 'not-an-app.yaml', 'web.yaml', 'web/chart/values.yaml',
    'web/values/values-prod.yaml', 'workers-config/notes.yaml', 'workers.yaml', 'workers/deployment.yaml', 'workers/kustomization.yaml',
  ], 'top level, cnoe dirs; no Chart.yaml, no chart templates/, no ocistack.yaml');
});

test('the reference stack: references tied to images; unmatched ones and unreferenced Dockerfiles are warnings', async () => {
  const root = copyStack('ref');
  const m = await discoverStack({ dir: root });
  const used = Object.fromEntries(m.images.map((i) => [i.name, i.usedBy.map((r) => `${relative(root, r.location.file)}:${r.location.line}`)]));
  assert.equal(used, {
    'team/api': ['hello/manifests/deployment.yaml:16'],
    hello: ['hello/manifests/deployment.yaml:19'],
    tools: [],
    frontend: ['web.yaml:18', 'web/chart/values.yaml:4', 'web/values/values-prod.yaml:3'],
    worker: ['workers/kustomization.yaml:7'],
  });
  assert.equal(m.unmatched.map((r) => r.text), [`${GITEA}/giteaadmin/missing:1`]);
  assert.equal(m.warnings.map((w) => `${relative(root, w.location!.file)}:${w.location!.line} ${w.message}`), [
    `hello/manifests/deployment.yaml:22 ${GITEA}/giteaadmin/missing:1: no Dockerfile of the stack builds giteaadmin/missing`,
    `tools/Dockerfile:1 nothing in the stack's manifests references the image tools (built from ${relative(process.cwd(), join(root, 'tools/Dockerfile')).startsWith('..') ? join(root, 'tools/Dockerfile') : relative(process.cwd(), join(root, 'tools/Dockerfile'))})`,
    `web/values/values-prod.yaml:3 ${GITEA}/giteaAdmin/frontend:1.2.0: Kubernetes rejects capitals in image names (InvalidImageName); write giteaadmin (Gitea's registry path for the user giteaAdmin)`,
  ]);
});

test('registries: host case-insensitive, port exact, both idpbuilder forms by default, only the given ones otherwise', async () => {
  const root = makeTempDir('stack-registries');
  writeFiles(root, {
    'a.yaml': 'apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: { name: a }\nspec:\n  source: { repoURL: "cnoe://m" }\n',
    'm/all.yaml': [
      'a: GITEA.cnoe.localtest.me:8443/giteaadmin/x:1',
      'b: cnoe.localtest.me:8443/giteaadmin/x:2',
      'c: gitea.cnoe.localtest.me/giteaadmin/x:3',
      'd: gitea.cnoe.localtest.me:9443/giteaadmin/x:4',
      'e: https://gitea.cnoe.localtest.me:8443/giteaadmin/x.git',
      'f: "docker pull gitea.cnoe.localtest.me:8443/giteaadmin/x:5"',
      'g: gitea.cnoe.localtest.me:8443/giteaadmin',
      `h: gitea.cnoe.localtest.me:8443/giteaadmin/x@${D}`,
      `i: gitea.cnoe.localtest.me:8443/giteaadmin/x:6@${D}`,
      'j: gitea.cnoe.localtest.me:8443/giteaadmin/x:7@sha256:short',
      '',
    ].join('\n'),
  });
  const m = await discoverStack({ dir: root });
  const scan = (registries?: string[]) => scanReferences({ root: m.root, apps: m.apps, registries: registries ?? ['gitea.cnoe.localtest.me:8443', 'cnoe.localtest.me:8443'] });
  assert.equal((await scan()).references.map((r) => [r.location.line, r.registry, r.tag ?? null, r.digest ?? null]), [
    [1, 'GITEA.cnoe.localtest.me:8443', '1', null],
    [2, 'cnoe.localtest.me:8443', '2', null],
    [8, 'gitea.cnoe.localtest.me:8443', null, D],
    [9, 'gitea.cnoe.localtest.me:8443', '6', D],
  ]);
  assert.equal((await scan(['cnoe.localtest.me:8443'])).references.map((r) => r.location.line), [2]);
  assert.equal(m.unmatched.map((r) => r.location.line), [1, 2, 8, 9], 'discoverStack defaults to both forms');
  assert.is(parseStackReference('gitea.cnoe.localtest.me:8443/giteaadmin/a/b:c', [GITEA])?.repository, 'giteaadmin/a/b');
});

test('multi-document files, Helm shapes (number tags, tag@digest, no tag), kustomize digest/flow/name-only entries', async () => {
  const dir = makeTempDir('stack-shapes');
  writeFiles(dir, {
    'multi.yaml': `kind: A\nimage: ${GITEA}/giteaadmin/one:1\n---\nkind: B\nspec:\n  containers:\n    - image: ${GITEA}/giteaadmin/two:2\n---\n# empty\n`,
    'values.yaml': [
      'a:',
      `  image: { repository: ${GITEA}/giteaadmin/a, tag: 1.10 }`,
      'b:',
      '  image:',
      `    repository: ${GITEA}/giteaadmin/b`,
      `    tag: v1@${D}`,
      'c:',
      '  image:',
      `    repository: "${GITEA}/giteaadmin/c"`,
      'd:',
      `  image: "${GITEA}/giteaadmin/d:\\x34"`,
      '',
    ].join('\n'),
    'kustomization.yaml': [
      'images:',
      '  - name: a',
      `    newName: ${GITEA}/giteaadmin/ka`,
      `    digest: ${D}`,
      `  - { name: b, newName: ${GITEA}/giteaadmin/kb, newTag: "2" }`,
      `  - name: ${GITEA}/giteaadmin/kc`,
      '    newTag: "3"',
      '',
    ].join('\n'),
  });
  const multi = await scanFile(join(dir, 'multi.yaml'), [GITEA], 'manifest');
  assert.equal(multi.references.map((r) => [r.location.line, r.location.column, r.text]), [[2, 8, `${GITEA}/giteaadmin/one:1`], [7, 14, `${GITEA}/giteaadmin/two:2`]]);
  const values = await scanFile(join(dir, 'values.yaml'), [GITEA], 'helm-values');
  assert.equal(values.references.map((r) => [r.location.line, r.repository, r.tag ?? null, r.digest ?? null, r.source!.edit.kind]), [
    [2, 'giteaadmin/a', '1.10', null, 'tag'],
    [5, 'giteaadmin/b', 'v1', D, 'tag'],
    [9, 'giteaadmin/c', null, null, 'none'],
    [11, 'giteaadmin/d', '4', null, 'none'],
  ], 'a number tag keeps its spelling; an escaped string cannot be edited in place');
  const k = await scanFile(join(dir, 'kustomization.yaml'), [GITEA], 'manifest');
  assert.equal(k.references.map((r) => [r.location.line, r.kind, r.repository, r.tag ?? null, r.digest ?? null, r.source!.edit.kind]), [
    [3, 'kustomization', 'giteaadmin/ka', null, D, 'digest'],
    [5, 'kustomization', 'giteaadmin/kb', '2', null, 'none'],
    [6, 'kustomization', 'giteaadmin/kc', '3', null, 'insert-digest'],
  ]);
});

test('Helm charts: templates/ is skipped, other YAML in the chart is values; a file that does not parse is a warning', async () => {
  const root = makeTempDir('stack-chart');
  writeFiles(root, {
    'a.yaml': 'apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: { name: a }\nspec:\n  source: { repoURL: "cnoe://chart" }\n',
    'chart/Chart.yaml': `apiVersion: v2\nname: c\nversion: 1.0.0\nannotations:\n  img: ${GITEA}/giteaadmin/no:1\n`,
    'chart/templates/d.yaml': `image: ${GITEA}/giteaadmin/no:2\n`,
    'chart/ci/extra-values.yaml': `image: ${GITEA}/giteaadmin/yes:3\n`,
    'chart/broken.yaml': 'a: [1\n',
  });
  const m = await discoverStack({ dir: root });
  const r = await scanReferences({ root: m.root, apps: m.apps, registries: [GITEA] });
  assert.equal(r.references.map((x) => [relative(root, x.location.file), x.kind, x.tag]), [['chart/ci/extra-values.yaml', 'helm-values', '3']]);
  assert.equal(r.warnings.map((w) => `${relative(root, w.location!.file)}:${w.location!.line}`), ['chart/broken.yaml:2']);
});

test.run();
