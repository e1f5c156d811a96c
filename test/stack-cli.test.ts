/**
 * `ocistack stack list|build|push` (lib/cli/commands/stack.ts) run in process
 * through main's runCommand with hand-made discovery and access (the real
 * ones live in other modules), against a real TLS registry with htpasswd:
 * the summary table, the sources printed and the password never, exit 1 when
 * an image fails, --pin and --pin --write, flags reaching the access
 * resolver, and usage errors exiting 2.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { PassThrough, Readable } from 'node:stream';
import { join } from 'node:path';
import { withRegistry, skopeoInspectArgs, type TestRegistry } from './helpers/registry.js';
import { busyboxBase, inspectImage } from './helpers/images.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';
import { FAILING_DOCKERFILE, lineOf, okDockerfile, stackFixture, testAccess, type StackFixture } from './helpers/stack-model.js';
import { runCommand } from '../lib/cli/main.js';
import { stackCommand } from '../lib/cli/commands/stack.js';
import type { GiteaAccessRequest, StackPin } from '../lib/stack/providers.js';
import type { GiteaAccess } from '../lib/stack/types.js';
import { ocistack } from './helpers/cli.js';

let reg: TestRegistry;
let base: string;
let access: GiteaAccess;

test.before(async () => {
  requireTool('runc');
  reg = await withRegistry('htpasswd');
  base = await busyboxBase(reg);
  access = testAccess(reg);
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  requests: GiteaAccessRequest[];
  pins: StackPin[][];
}

async function stack(argv: string[], fx: StackFixture | undefined, input = ''): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const requests: GiteaAccessRequest[] = [];
  const pins: StackPin[][] = [];
  const cmd = stackCommand({
    resolveAccess: async (req) => (requests.push(req), access),
    discover: async () => {
      if (!fx) throw new Error('no fixture');
      return fx.model;
    },
    writePins: async (p) => void pins.push(p),
  });
  const env = { ...process.env, OCISTACK_CACHE_DIR: join(makeTempDir('stack-cli-cache'), 'c') };
  const code = await runCommand(cmd, argv, { stdout, stderr, stdin: Readable.from([input]), env, cwd: fx?.root ?? process.cwd() });
  return { code, stdout: out, stderr: err, requests, pins };
}

async function absent(ref: string): Promise<boolean> {
  return (await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${ref}`])).code !== 0;
}

test('stack push: summary table on stdout, sources on stderr, progress prefixed, the password nowhere', async () => {
  const fx = stackFixture(reg, [{ name: 'scli-a', dockerfile: okDockerfile('a') }, { name: 'scli-b', dockerfile: okDockerfile('b') }]);
  const r = await stack(['push', '.', '--build-arg', `BASE=${base}`, '--progress', 'plain'], fx);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^IMAGE\s+STATUS\s+DIGEST\s+SIZE\s+TIME\s+CACHED$/);
  for (const [i, name] of ['scli-a', 'scli-b'].entries()) {
    const digest = (await inspectImage(`${reg.host}/giteaadmin/${name}:latest`, reg)).digest;
    assert.match(lines[i + 1]!, new RegExp(`^${name}\\s+pushed\\s+${digest.slice(7, 19)}\\s+[\\d.]+ (B|KiB|MiB)\\s+[\\d.]+m?s\\s+0$`));
  }
  assert.is(lines[3], '2 of 2 images ok');
  assert.match(r.stderr, new RegExp(`^registry ${reg.host}/giteaadmin \\(from flags\\)$`, 'm'));
  assert.match(r.stderr, /^credentials: test registry htpasswd user$/m);
  assert.match(r.stderr, /^TLS trust: --ca-file /m);
  assert.match(r.stderr, /^\[scli-a\] #\d+ /m, 'plain progress lines start with the image');
  assert.match(r.stderr, /^\[scli-b\] #\d+ /m);
  assert.not.ok((r.stdout + r.stderr).includes(reg.password!), 'password not printed');
  assert.is(r.requests[0]!.purpose, 'push');
});

test('stack push with a failing image: exit 1, the others pushed, its error named by image on stderr, no tag for it', async () => {
  const fx = stackFixture(reg, [{ name: 'sclf-ok', dockerfile: okDockerfile('ok') }, { name: 'sclf-bad', dockerfile: FAILING_DOCKERFILE }]);
  const r = await stack(['push', '--build-arg', `BASE=${base}`, '--progress', 'quiet'], fx);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stdout, /^sclf-ok\s+pushed /m);
  assert.match(r.stdout, /^sclf-bad\s+failed\s+-\s+-\s+/m);
  assert.match(r.stdout, /1 of 2 images ok, 1 failed/);
  assert.match(r.stderr, /^error: \[sclf-bad\] .*Dockerfile:3(:\d+)?: RUN .* failed with exit code 7$/m, r.stderr);
  assert.match(r.stderr, /broken-on-purpose/);
  assert.ok(await absent(`${reg.host}/giteaadmin/sclf-bad:latest`));
  assert.not.ok(await absent(`${reg.host}/giteaadmin/sclf-ok:latest`));
  assert.not.ok((r.stdout + r.stderr).includes(reg.password!));

  const ff = await stack(['push', '--build-arg', `BASE=${base}`, '--progress', 'quiet', '--fail-fast', '--concurrency', '1', '.', 'sclf-bad', 'sclf-ok'], fx);
  assert.is(ff.code, 1);
  assert.match(ff.stdout, /^sclf-bad\s+failed/m);
  assert.match(ff.stdout, /^sclf-ok\s+skipped/m);
});

test('stack push --pin prints the digest-pinned references; --pin --write hands exactly those to writePins', async () => {
  const fx = stackFixture(reg, [{ name: 'sclp-a', dockerfile: okDockerfile('a') }]);
  const r = await stack(['push', '--build-arg', `BASE=${base}`, '--progress', 'quiet', '--pin'], fx);
  assert.is(r.code, 0, r.stderr);
  const digest = (await inspectImage(`${reg.host}/giteaadmin/sclp-a:latest`, reg)).digest;
  const ref = fx.model.images[0]!.usedBy[0]!;
  assert.ok(lineOf(fx.manifest, ref.location.line).includes(ref.text), 'the fixture reference is where it says');
  assert.match(r.stdout, new RegExp(`^manifests/deployment.yaml:${ref.location.line}:14  ${ref.text} -> ${reg.host}/giteaadmin/sclp-a:latest@${digest}$`, 'm'));
  assert.equal(r.pins, [], '--pin alone writes nothing');

  const w = await stack(['push', '--build-arg', `BASE=${base}`, '--progress', 'quiet', '--pin', '--write'], fx);
  assert.is(w.code, 0, w.stderr);
  assert.is(w.pins.length, 1);
  const digest2 = (await inspectImage(`${reg.host}/giteaadmin/sclp-a:latest`, reg)).digest;
  assert.equal(w.pins[0], [{ reference: ref, pinned: `${reg.host}/giteaadmin/sclp-a:latest@${digest2}` }]);
  assert.match(w.stderr, /rewrote 1 reference/);
});

test('stack push --pin --write with a failing image writes nothing (all or nothing) and says so; --pin still lists the pushed image', async () => {
  const fx = stackFixture(reg, [{ name: 'sclw-ok', dockerfile: okDockerfile('ok') }, { name: 'sclw-bad', dockerfile: FAILING_DOCKERFILE }]);
  const r = await stack(['push', '--build-arg', `BASE=${base}`, '--progress', 'quiet', '--pin', '--write'], fx);
  assert.is(r.code, 1, r.stderr);
  assert.equal(r.pins, [], 'writePins was not called');
  assert.match(r.stderr, /^--pin --write: nothing rewritten, 1 of 2 images were not pushed; fix it and run the push again$/m);
  assert.not.match(r.stderr, /rewrote/);
  const digest = (await inspectImage(`${reg.host}/giteaadmin/sclw-ok:latest`, reg)).digest;
  assert.match(r.stdout, new RegExp(`-> ${reg.host}/giteaadmin/sclw-ok:latest@${digest}$`, 'm'), 'the pushed image\'s pin is still printed');
  assert.not.match(r.stdout, /sclw-bad:latest@/);
});

test('stack push --pin lists the references that cannot be pinned in place with the reason; --write leaves them out', async () => {
  const fx = stackFixture(reg, [{ name: 'sclq-a', dockerfile: okDockerfile('a') }]);
  const ref = fx.model.images[0]!.usedBy[0]!;
  // A Helm values image without a plain tag: value, as lib/stack/references.ts marks it.
  const reason = 'no plain tag: value next to repository: (add "tag:" to pin it)';
  const helm = { ...ref, kind: 'helm-values' as const, location: { file: join(fx.root, 'chart', 'values.yaml'), line: 7, column: 3 }, source: { fileSha256: '0'.repeat(64), span: { start: 0, end: ref.text.length }, edit: { kind: 'none' as const, reason } } };
  fx.model.images[0]!.usedBy.push(helm);
  const r = await stack(['push', '--build-arg', `BASE=${base}`, '--progress', 'quiet', '--pin', '--write'], fx);
  assert.is(r.code, 0, r.stderr);
  const digest = (await inspectImage(`${reg.host}/giteaadmin/sclq-a:latest`, reg)).digest;
  assert.match(r.stdout, /^1 reference cannot be pinned in place \(pin by hand\):$/m);
  assert.ok(r.stdout.includes(`chart/values.yaml:7:3  ${ref.text} -> ${reg.host}/giteaadmin/sclq-a:latest@${digest}: ${reason}\n`), r.stdout);
  assert.is(r.pins.length, 1);
  assert.equal(r.pins[0]!.map((p) => p.reference), [ref], 'only the writable reference is handed to writePins');
  assert.match(r.stderr, /rewrote 1 reference in the stack's files; 1 left as it was \(listed above\)/);
});

test('stack list: per image its Dockerfile, where it goes and who uses it; the model warnings', async () => {
  const fx = stackFixture(reg, [{ name: 'scll-a', dockerfile: okDockerfile('a') }]);
  const r = await stack(['list', '--tag', 'v3'], fx);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^  scll-a$/m);
  assert.match(r.stdout, /^    dockerfile  scll-a\/Dockerfile$/m);
  assert.match(r.stdout, new RegExp(`^    pushed as   ${reg.host}/giteaadmin/scll-a:v3$`, 'm'));
  assert.match(r.stdout, /^    used by     manifests\/deployment\.yaml:\d+:14 /m);
  assert.match(r.stdout, /^warning: manifests\/deployment\.yaml:1: a warning of the model$/m);
  assert.is(r.requests[0]!.purpose, 'list');
});

test('flags reach the access resolver: --host --port --use-path-routing --creds USER (password from stdin) --ca-file --insecure', async () => {
  const fx = stackFixture(reg, [{ name: 'sclr-a', dockerfile: okDockerfile('a') }]);
  const secret = 'not-the-registry-password-s3cret';
  const r = await stack(['build', '--build-arg', `BASE=${base}`, '--progress', 'plain', '--host', 'example.test', '--port', '9443', '--use-path-routing', '--creds', 'giteaAdmin', '--ca-file', 'ca.pem', '--insecure'], fx, `${secret}\n`);
  assert.is(r.code, 0, r.stderr);
  const req = r.requests[0]!;
  assert.equal([req.purpose, req.host, req.port, req.pathRouting, req.credentials, req.caFile, req.insecure],
    ['build', 'example.test', 9443, true, { username: 'giteaAdmin', password: secret }, join(fx.root, 'ca.pem'), true]);
  assert.match(r.stdout, /^sclr-a\s+built\s+[0-9a-f]{12}\s/m);
  assert.not.ok((r.stdout + r.stderr).includes(secret));
});

test('usage errors exit 2 and say what to do', async () => {
  const fx = stackFixture(reg, [{ name: 'sclu-a', dockerfile: okDockerfile('a') }, { name: 'sclu-b', dockerfile: okDockerfile('b') }]);
  const cases: [string[], RegExp][] = [
    [[], /stack needs a command/],
    [['frob'], /unknown stack command "frob"/],
    [['push', '--concurrency', '0'], /--concurrency "0"/],
    [['push', '--write'], /--write needs --pin/],
    [['push', '--tag', 'host/x:1'], /--tag "host\/x:1" is not a tag[\s\S]*give the tag alone/],
    [['push', '--port', '99999'], /--port "99999" is not a TCP port/],
    [['push', '--bogus'], /unknown flag --bogus/],
    [['build', '--pin'], /unknown flag --pin/],
    [['list', '.', 'extra'], /stack list takes one stack directory/],
    [['push', 'no-such-dir'], /stack directory no-such-dir is not a directory/],
    [['push', '.', 'sclu-a', 'nope', '--build-arg', `BASE=${base}`], /no image named nope[\s\S]*sclu-a, sclu-b/],
  ];
  for (const [argv, re] of cases) {
    const r = await stack(argv, fx);
    assert.is(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re, argv.join(' '));
    assert.match(r.stderr, /^error: /m);
    assert.match(r.stderr, /^hint: /m, `${argv.join(' ')} has a hint`);
  }
  // The unknown IMAGE was caught before any build: nothing pushed for sclu-a.
  assert.ok(await absent(`${reg.host}/giteaadmin/sclu-a:latest`));
});

test('the bin: "ocistack stack --help", and a usage error through the real process exits 2', async () => {
  const help = await ocistack(['stack', '--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /ocistack stack push \[OPTIONS\] \[DIR\] \[IMAGE\.\.\.\]/);
  const bad = await ocistack(['stack', 'push', '--concurrency', 'x']);
  assert.is(bad.code, 2);
});

test.run();
