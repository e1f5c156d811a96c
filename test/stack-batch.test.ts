/**
 * lib/stack/batch.ts against a real TLS registry with htpasswd auth: every
 * image of a stack built with runc and pushed (skopeo reads them back, runc
 * runs one), a failing image leaves the others pushed and gets no tag,
 * failFast skips the rest, the IMAGE filter, the concurrency bound, a base
 * shared by two images downloaded once, and examples/stack itself building
 * and running. The model and access are hand-made (test/helpers/stack-model.ts).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { withRegistry, skopeoInspectArgs, type TestRegistry } from './helpers/registry.js';
import { busyboxBase, inspectImage, runImage } from './helpers/images.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';
import { FAILING_DOCKERFILE, okDockerfile, stackFixture, testAccess } from './helpers/stack-model.js';
import { REPO_ROOT } from './helpers/cli.js';
import { buildStack, listStack, pushStack, DEFAULT_STACK_CONCURRENCY } from '../lib/stack/batch.js';
import { build } from '../lib/engine/build.js';
import type { BuildOptions } from '../lib/engine/options.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import { isOcistackError } from '../lib/errors.js';
import type { GiteaAccess, StackModel } from '../lib/stack/types.js';

let reg: TestRegistry;
let base: string;
let access: GiteaAccess;

test.before(async () => {
  requireTool('runc');
  reg = await withRegistry('htpasswd');
  base = await busyboxBase(reg);
  access = testAccess(reg);
});

/** No tag `ref` in the registry. */
async function absent(ref: string): Promise<boolean> {
  const r = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${ref}`]);
  return r.code !== 0;
}

function opts(model: StackModel, extra: Record<string, unknown> = {}) {
  return { dir: model.root, model, access, buildArgs: { BASE: base }, cacheDir: join(makeTempDir('stack-cache'), 'c'), ...extra };
}

test('pushStack: every image built and pushed under giteaadmin/, skopeo reads each, runc runs one; progress carries the image name', async () => {
  const fx = stackFixture(reg, [{ name: 'sb-alpha', dockerfile: okDockerfile('alpha') }, { name: 'sb-beta', dockerfile: okDockerfile('beta') }]);
  const events: ProgressEvent[] = [];
  const r = await pushStack({ ...opts(fx.model), onProgress: (e) => events.push(e) });
  assert.ok(r.ok, r.images.map((i) => i.error?.message).join('\n'));
  assert.equal(r.images.map((i) => [i.image.name, i.status]), [['sb-alpha', 'pushed'], ['sb-beta', 'pushed']]);
  for (const i of r.images) {
    const ref = `${reg.host}/giteaadmin/${i.image.name}:latest`;
    assert.equal(i.references, [ref]);
    const img = await inspectImage(ref, reg);
    assert.is(img.digest, i.manifestDigest);
    const expectedSize = img.manifest.config.size + img.manifest.layers.reduce((n: number, l: { size: number }) => n + l.size, 0);
    assert.is(i.size, expectedSize, 'size is config + layers as pushed');
    assert.is(i.cachedSteps, 0);
    assert.ok(i.durationMs >= 0);
  }
  const out = await runImage(`${reg.host}/giteaadmin/sb-beta:latest`, { registry: reg });
  assert.is(out.stdout, 'beta\n', out.stderr);
  const steps = events.filter((e): e is Extract<ProgressEvent, { type: 'step' }> => e.type === 'step');
  assert.ok(steps.some((e) => e.id.startsWith('[sb-alpha] #')) && steps.some((e) => e.id.startsWith('[sb-beta] #')), 'step ids carry the image');
  assert.ok(steps.every((e) => /^\[sb-(alpha|beta)\] /.test(e.id)));
  assert.not.ok(JSON.stringify(events).includes(reg.password!), 'no password in progress');
});

test('one failing image: the others pushed, the failed one has its error (line, exit code) and no tag; ok is false', async () => {
  const fx = stackFixture(reg, [
    { name: 'sbf-one', dockerfile: okDockerfile('one') },
    { name: 'sbf-broken', dockerfile: FAILING_DOCKERFILE },
    { name: 'sbf-two', dockerfile: okDockerfile('two') },
  ]);
  const r = await pushStack(opts(fx.model));
  assert.is(r.ok, false);
  assert.equal(r.images.map((i) => i.status), ['pushed', 'failed', 'pushed']);
  const broken = r.images[1]!;
  assert.ok(isOcistackError(broken.error), String(broken.error));
  assert.is((broken.error as { code?: string }).code, 'RUN_FAILED');
  assert.match(broken.error!.message + (broken.error as { where?: string }).where, /exit|7/);
  assert.is((broken.error as { location?: { line: number } }).location?.line, 3);
  assert.equal(broken.references, []);
  assert.is(broken.manifestDigest, undefined);
  assert.ok(await absent(`${reg.host}/giteaadmin/sbf-broken:latest`), 'no tag for the failed image');
  for (const n of ['sbf-one', 'sbf-two']) assert.not.ok(await absent(`${reg.host}/giteaadmin/${n}:latest`), `${n} pushed`);
});

test('failFast: the first failure stops the batch; the rest are skipped and nothing of theirs is pushed', async () => {
  const fx = stackFixture(reg, [
    { name: 'sbff-broken', dockerfile: FAILING_DOCKERFILE },
    { name: 'sbff-a', dockerfile: okDockerfile('a') },
    { name: 'sbff-b', dockerfile: okDockerfile('b') },
  ]);
  const r = await pushStack(opts(fx.model, { failFast: true, concurrency: 1 }));
  assert.is(r.ok, false);
  assert.equal(r.images.map((i) => i.status), ['failed', 'skipped', 'skipped']);
  assert.match(r.images[1]!.error!.message, /sbff-broken failed/);
  for (const n of ['sbff-broken', 'sbff-a', 'sbff-b']) assert.ok(await absent(`${reg.host}/giteaadmin/${n}:latest`), `${n} not pushed`);

  // Without failFast the same stack pushes the two good images (the test above, in this order too).
  const again = await pushStack(opts(fx.model, { concurrency: 1 }));
  assert.equal(again.images.map((i) => i.status), ['failed', 'pushed', 'pushed']);
});

test('failFast aborts a build already running: with concurrency 2 the slow image is stopped, not pushed', async () => {
  const fx = stackFixture(reg, [
    { name: 'sbfa-slow', dockerfile: 'ARG BASE\nFROM ${BASE}\nRUN sleep 30\n' },
    { name: 'sbfa-broken', dockerfile: FAILING_DOCKERFILE },
  ]);
  const r = await pushStack(opts(fx.model, { failFast: true, concurrency: 2 }));
  assert.equal(r.images.map((i) => i.status), ['skipped', 'failed']);
  assert.ok(await absent(`${reg.host}/giteaadmin/sbfa-slow:latest`));
});

test('IMAGE filter: only the named images are built; an unknown name is a usage error listing the names, before any build', async () => {
  const fx = stackFixture(reg, [{ name: 'sbi-a', dockerfile: okDockerfile('a') }, { name: 'sbi-b', dockerfile: okDockerfile('b') }]);
  const r = await pushStack(opts(fx.model, { images: ['sbi-b'] }));
  assert.equal(r.images.map((i) => i.image.name), ['sbi-b']);
  assert.ok(r.ok);
  assert.ok(await absent(`${reg.host}/giteaadmin/sbi-a:latest`));

  let built = 0;
  const err = await pushStack(opts(fx.model, { images: ['sbi-a', 'nope'], build: async (o: BuildOptions) => (built++, build(o)) })).then(() => undefined, (e) => e);
  assert.ok(isOcistackError(err));
  assert.is(err.exitCode, 2);
  assert.match(err.message, /nope/);
  assert.match(err.hint ?? '', /sbi-a, sbi-b/);
  assert.is(built, 0);
});

test('concurrency: at most N builds at once (observed in the build hook and in the progress order)', async () => {
  const fx = stackFixture(reg, ['c1', 'c2', 'c3', 'c4'].map((n) => ({ name: `sbc-${n}`, dockerfile: okDockerfile(n) })));
  for (const n of [1, 2]) {
    let active = 0;
    let most = 0;
    const order: string[] = [];
    const r = await buildStack(opts(fx.model, {
      concurrency: n,
      onProgress: (e: ProgressEvent) => {
        const m = /^\[([^\]]+)\]/.exec(e.type === 'step' ? e.id : '');
        if (m) order.push(m[1]!);
      },
      build: async (o: BuildOptions) => {
        most = Math.max(most, ++active);
        try {
          return await build(o);
        } finally {
          active--;
        }
      },
    }));
    assert.ok(r.ok);
    assert.is(most, n, `concurrency ${n}`);
    // Image A's events all come before image B's first one exactly when they did not overlap.
    const overlapped = order.lastIndexOf('sbc-c1') > order.indexOf('sbc-c2');
    assert.is(overlapped, n > 1, `order with concurrency ${n}: ${order.join(' ')}`);
  }
  assert.is(DEFAULT_STACK_CONCURRENCY, 2);
});

test('buildStack builds without pushing: images tagged in the cache, no tag in the registry', async () => {
  const fx = stackFixture(reg, [{ name: 'sbb-only', dockerfile: okDockerfile('only') }]);
  const r = await buildStack(opts(fx.model));
  assert.ok(r.ok);
  assert.is(r.images[0]!.status, 'built');
  assert.equal(r.images[0]!.references, []);
  assert.match(r.images[0]!.manifestDigest ?? '', /^sha256:/);
  assert.ok(await absent(`${reg.host}/giteaadmin/sbb-only:latest`));
});

test('two images FROM the same base into one cache: its layer is downloaded once', async () => {
  const fx = stackFixture(reg, [{ name: 'sbd-x', dockerfile: okDockerfile('x') }, { name: 'sbd-y', dockerfile: okDockerfile('y') }]);
  const baseImg = await inspectImage(base, reg);
  const layer = baseImg.manifest.layers[0].digest as string;
  const countGets = () => reg.logs().split('\n').filter((l) => l.includes('response completed') && l.includes('http.request.method=GET') && l.includes(`/blobs/${layer}`)).length;
  const before = countGets();
  const r = await buildStack(opts(fx.model, { concurrency: 2 }));
  assert.ok(r.ok);
  assert.is(countGets() - before, 1, 'the base layer was fetched once for both images');
});

test('two images with the same new layer pushed at once: it is uploaded once, the other push mounts it', async () => {
  const blob = randomBytes(4 << 20);
  const fx = stackFixture(reg, ['sbu-x', 'sbu-y'].map((name) => ({ name, dockerfile: 'ARG BASE\nFROM ${BASE}\nCOPY big.bin /big.bin\n' })));
  for (const img of fx.model.images) writeFileSync(join(img.context, 'big.bin'), blob);
  const layer = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const r = await pushStack(opts(fx.model, { concurrency: 2, sourceDateEpoch: 0 }));
  assert.ok(r.ok, r.images.map((i) => i.error?.message).join('\n'));
  const pushed = await Promise.all(['sbu-x', 'sbu-y'].map((n) => inspectImage(`${reg.host}/giteaadmin/${n}:latest`, reg)));
  const shared = pushed[0]!.manifest.layers.at(-1).digest as string;
  assert.is(pushed[1]!.manifest.layers.at(-1).digest, shared, 'the COPY layer is the same in both images');
  assert.is.not(shared, layer, 'the layer is a gzip tar, not the file itself');
  const uploads = reg.logs().split('\n').filter((l) => l.includes('response completed') && l.includes('http.request.method=PUT') && (l.includes(`digest=${shared}`) || l.includes(`digest=${shared.replace(':', '%3A')}`)));
  assert.is(uploads.length, 1, uploads.join('\n'));
});

test('listStack: each image with the references it would be pushed as (--tag replaces the tags)', async () => {
  const fx = stackFixture(reg, [{ name: 'sbl-a', dockerfile: okDockerfile('a') }]);
  const l = await listStack({ dir: fx.root, model: fx.model, access, tag: 'v2' });
  assert.equal(l.images.map((i) => i.references), [[`${reg.host}/giteaadmin/sbl-a:v2`]]);
  assert.is(l.model, fx.model);
});

test('examples/stack: a working stack (Application -> cnoe:// manifests -> the image), built with a RUN, pushed, run', async () => {
  const root = join(REPO_ROOT, 'examples', 'stack');
  const app = readFileSync(join(root, 'hello.yaml'), 'utf8');
  assert.match(app, /kind: Application/);
  assert.match(app, /repoURL: cnoe:\/\/hello\/manifests/);
  assert.ok(existsSync(join(root, 'hello', 'manifests')));
  const deployment = readFileSync(join(root, 'hello', 'manifests', 'deployment.yaml'), 'utf8');
  assert.match(deployment, /image: gitea\.cnoe\.localtest\.me:8443\/giteaadmin\/hello:latest/);
  assert.match(readFileSync(join(root, 'hello', 'Dockerfile'), 'utf8'), /^RUN /m);
  const model: StackModel = {
    root,
    apps: [],
    images: [{ name: 'hello', context: join(root, 'hello'), dockerfile: join(root, 'hello', 'Dockerfile'), buildArgs: {}, tags: ['latest'], origin: { kind: 'discovered' }, usedBy: [] }],
    unmatched: [],
    warnings: [],
  };
  const r = await pushStack(opts(model));
  assert.ok(r.ok, r.images[0]!.error?.message);
  const ref = `${reg.host}/giteaadmin/hello:latest`;
  const img = await inspectImage(ref, reg);
  assert.equal(img.config.config.Cmd, ['httpd', '-f', '-v', '-p', '8080', '-h', '/www']);
  assert.is(img.config.config.User, '10001');
  const out = await runImage(ref, { registry: reg, args: ['sh', '-c', 'cat /www/build.txt; grep -c "<h1>hello from" /www/index.html; grep web /etc/passwd'] });
  assert.is(out.code, 0, out.stderr);
  assert.match(out.stdout, /^built on \S+ by a RUN step\n1\nweb:x:10001:/, out.stdout);
});

test.run();
