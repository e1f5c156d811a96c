/**
 * ocistack.yaml (lib/stack/config.ts): version 1 schema, and every mistake a
 * STACK_CONFIG error at ocistack.yaml:line:column with a hint that says the fix.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { loadStackConfig } from '../lib/stack/config.js';
import { discoverStack } from '../lib/stack/discover.js';
import { copyStack, rejectsWith, writeFiles } from './helpers/stacks.js';
import { makeTempDir } from './helpers/tools.js';

function stack(config: string): string {
  const root = makeTempDir('stack-config');
  writeFiles(root, {
    'app/Dockerfile': 'FROM scratch\n',
    'app/build/alt.Dockerfile': 'FROM scratch\n',
    'app/deploy.yaml': 'image: gitea.cnoe.localtest.me:8443/giteaadmin/app:1\n',
    'nodf/readme.txt': 'no Dockerfile here\n',
    'ocistack.yaml': config,
  });
  return root;
}

test('fixtures/stacks/bad-config: a misspelt key fails at its line and column, suggesting the right one', async () => {
  const root = copyStack('bad-config');
  const e = await rejectsWith(discoverStack({ dir: root }), 'STACK_CONFIG');
  assert.match(e.where, /bad-config\/ocistack\.yaml:5:5$/);
  assert.is(e.message, 'unknown key "buildArg" in images[0]');
  assert.match(e.hint!, /did you mean "buildArgs"\?/);
  assert.is(e.exitCode, 1);
});

test('a valid file: paths resolved (context from the stack, dockerfile from the context), values kept as written', async () => {
  const root = stack([
    'version: 1',
    'images:',
    '  - name: app',
    '    context: app',
    '    dockerfile: build/alt.Dockerfile',
    '    buildArgs: { V: 1.10, ON: true, S: "x y" }',
    '    tags: ["1.0", v1, "1.0"]',
    '    manifests: [app/deploy.yaml]',
    '  - name: team/app2',
    '    context: app',
    '    target: final',
    '',
  ].join('\n'));
  const c = (await loadStackConfig(root))!;
  assert.is(c.version, 1);
  assert.equal(c.images.map((i) => [i.name, i.context, i.dockerfile, i.buildArgs, i.tags, i.manifests, i.target, i.location.line]), [
    ['app', join(root, 'app'), join(root, 'app/build/alt.Dockerfile'), { V: '1.10', ON: 'true', S: 'x y' }, ['1.0', 'v1'], [join(root, 'app/deploy.yaml')], undefined, 3],
    ['team/app2', join(root, 'app'), join(root, 'app/Dockerfile'), {}, undefined, [], 'final', 9],
  ]);
  assert.is(await loadStackConfig(makeTempDir('stack-none')), undefined, 'no ocistack.yaml: undefined');
});

// [ocistack.yaml text, line:column of the error, message pattern, hint pattern]
const BAD: [string, string, RegExp, RegExp][] = [
  ['', '1:1', /is empty/, /version: 1/],
  ['images: []\n', '1:1', /has no version/, /version: 1/],
  ['version: 2\nimages: []\n', '1:10', /unsupported ocistack.yaml version 2/, /reads version 1/],
  ['version: "1"\n', '1:10', /unsupported ocistack.yaml version "1"/, /version: 1/],
  ['version: 1\nimage: []\n', '2:1', /unknown key "image" in ocistack.yaml/, /did you mean "images"/],
  ['version: 1\nimages:\n  name: app\n', '3:3', /images must be a list/, /- name:/],
  ['version: 1\nimages:\n  - app\n', '3:5', /images\[0\] must be a mapping/, /context: DIR/],
  ['version: 1\nimages:\n  - name: app\n', '3:5', /images\[0\] has no context/, /add "context: DIR"/],
  ['version: 1\nimages:\n  - name: app\n    context: nope\n', '4:14', /context "nope" does not exist/, /create it, or fix the path/],
  ['version: 1\nimages:\n  - name: app\n    context: app/deploy.yaml\n', '4:14', /is not a directory/, /directory/],
  ['version: 1\nimages:\n  - name: app\n    context: ../elsewhere\n', '4:14', /outside the stack directory/, /idpbuilder only copies the stack directory/],
  ['version: 1\nimages:\n  - name: app\n    context: /etc\n', '4:14', /is absolute/, /relative to the stack directory/],
  ['version: 1\nimages:\n  - name: app\n    context: link\n', '4:14', /symbolic link out of the stack/, /copy the files into it/],
  ['version: 1\nimages:\n  - name: app\n    context: nodf\n', '4:14', /no Dockerfile in context/, /add "dockerfile: FILE"/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    dockerfile: Missing.Dockerfile\n', '5:17', /dockerfile "Missing.Dockerfile" does not exist/, /relative to the context/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    dockerfile: ../../x\n', '5:17', /outside the stack directory/, /stack directory/],
  ['version: 1\nimages:\n  - name: My_App\n    context: app\n', '3:11', /capital letters/, /write name: my_app/],
  ['version: 1\nimages:\n  - name: a__b\n    context: app\n', '3:11', /not a Gitea image name/, /write name: a-b/],
  ['version: 1\nimages:\n  - name: 7\n    context: app\n', '3:11', /name must be a non-empty string/, /name: "\.\.\."/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    tags: v1\n', '5:11', /tags must be a non-empty list/, /tags: \[v1\]/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    tags: [-bad]\n', '5:12', /tag "-bad" is invalid/, /tags like/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    tags: [{ a: 1 }]\n', '5:12', /each tag must be a string/, /tags:/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    buildArgs: [V=1]\n', '5:16', /buildArgs must be a mapping/, /buildArgs: \{ NAME/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    buildArgs:\n      V: { nested: 1 }\n', '6:10', /buildArgs.V must be a string/, /V: "value"/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    buildArgs:\n      "no good": x\n', '6:7', /not a build argument name/, /letters, digits/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    target: [a]\n', '5:13', /target must be a non-empty string/, /target: "/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    platform: amd64\n', '5:15', /not os\/arch/, /linux\/amd64/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    manifests: app/deploy.yaml\n', '5:16', /manifests must be a list/, /manifests: \[/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    manifests: [../../etc/passwd]\n', '5:17', /outside the stack directory/, /stack directory/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n  - name: app\n    context: app\n    dockerfile: build/alt.Dockerfile\n', '5:5', /"app" is used twice \(also at line 3\)/, /its own name/],
  ['version: 1\nimages:\n  - name: a\n    context: app\n  - name: b\n    context: app\n', '5:5', /same Dockerfile and target as line 3/, /merge the two entries/],
  ['version: 1\nimages:\n  - name: app\n    context: app\n    context: app\n', '5:5', /key "context" given twice/, /keep one/],
  ['version: 1\nimages:\n  - name: app\n    context: [app\n', '5:1', /YAML syntax/, /fix the YAML syntax/],
  ['version: 1\n---\nversion: 1\n', '3:1', /more than one YAML document/, /remove the second/],
];

test('every mistake: STACK_CONFIG at ocistack.yaml:line:column, with the fix in the hint', async () => {
  for (const [text, where, message, hint] of BAD) {
    const root = stack(text);
    symlinkSync(makeTempDir('stack-config-out'), join(root, 'link'));
    const e = await rejectsWith(loadStackConfig(root), 'STACK_CONFIG');
    assert.ok(e.where.endsWith(`ocistack.yaml:${where}`), `${JSON.stringify(text)}: at ${e.where}, expected ${where} (${e.message})`);
    assert.match(e.message, message, JSON.stringify(text));
    assert.match(e.hint ?? '', hint, `${JSON.stringify(text)}: hint ${e.hint}`);
  }
});

test.run();
