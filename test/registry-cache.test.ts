/**
 * The registry cache (issue 11): `--cache-to type=registry,ref=REF` on one
 * "machine" (its own cache dir and HOME), `--cache-from` on another, through
 * the Gitea-like token registry (docker-registry + nginx + Gitea's token
 * flow). The base image lives on a second token registry whose nginx logs
 * every Authorization header, so the tests also see that credentials meant
 * for the cache registry never go to the base image's.
 *
 * What proves reuse: a `RUN date +%s%N` layer differs on every run, so the
 * same manifest digest on machine B means B took A's layer from the cache
 * instead of running the step; which blobs B downloaded is read from its
 * `--progress rawjson` events and compared with the cache image (skopeo).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { build as libraryBuild } from '../lib/index.js';
import { busyboxBase } from './helpers/images.js';
import { ocistack, type CliResult } from './helpers/cli.js';
import { startGiteaRegistry, type GiteaTestRegistry } from './helpers/gitea-registry.js';
import { startRegistry, skopeoInspectArgs, type TestRegistry } from './helpers/registry.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';

let gitea: GiteaTestRegistry;
let baseReg: TestRegistry;
let base: string;

test.before(async () => {
  requireTool('runc');
  requireTool('skopeo');
  [gitea, baseReg] = await Promise.all([
    startGiteaRegistry(),
    startRegistry({ auth: 'token', proxy: { maxBodySize: '0', logAuthorization: true } }),
  ]);
  base = await busyboxBase(baseReg, 'library/busybox', 'regcache');
});

test.after(async () => {
  await gitea?.stop();
  await baseReg?.stop();
});

interface Machine {
  cacheDir: string;
  home: string;
}

/** A new machine: empty cache dir, empty HOME (no logins, no docker config). */
function machine(name: string): Machine {
  const home = makeTempDir(`rc-${name}-home`);
  mkdirSync(join(home, '.docker'));
  return { cacheDir: makeTempDir(`rc-${name}-cache`), home };
}

interface Ev {
  type: string;
  id?: string;
  name?: string;
  status?: string;
  action?: string;
  digest?: string;
  done?: boolean;
  message?: string;
}

interface Built extends CliResult {
  events: Ev[];
  /** Dockerfile steps (`[stage] INSTR`) by name -> how they ended (`cached`, `done`). */
  steps: Map<string, string>;
  /** Blobs downloaded (a `pull` event with done). */
  pulled: Set<string>;
  warnings: string[];
  digest: string;
}

async function build(m: Machine, dir: string, args: string[]): Promise<Built> {
  const r = await ocistack(
    ['build', dir, '--build-arg', `BASE=${base}`, '--cache-dir', m.cacheDir, '--ca-file', gitea.caFile,
      '--creds', `${gitea.username}:${gitea.password}`, '--progress', 'rawjson', ...args],
    { env: { HOME: m.home } },
  );
  const events: Ev[] = [];
  for (const line of r.stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      events.push(JSON.parse(line) as Ev);
    } catch {
      /* not an event */
    }
  }
  const steps = new Map<string, string>();
  for (const e of events) if (e.type === 'step' && e.name?.startsWith('[') && e.status !== 'start') steps.set(e.name, e.status!);
  const pulled = new Set(events.filter((e) => e.type === 'blob' && e.action === 'pull' && e.done).map((e) => e.digest!));
  const warnings = events.filter((e) => e.type === 'warning').map((e) => e.message!);
  return { ...r, events, steps, pulled, warnings, digest: r.stdout.trim() };
}

function context(name: string, dockerfile: string, files: Record<string, string>): string {
  const dir = makeTempDir(`rc-${name}`);
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

async function inspectRaw(ref: string, config = false): Promise<Record<string, any>> {
  const r = await run(requireTool('skopeo'), ['inspect', '--raw', ...(config ? ['--config'] : []), ...skopeoInspectArgs(gitea), `docker://${ref}`]);
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function stepStatus(b: Built, instr: string): string | undefined {
  for (const [name, status] of b.steps) if (name.endsWith(`] ${instr}`)) return status;
  return undefined;
}

const STAMP_DOCKERFILE = `ARG BASE
FROM \${BASE}
WORKDIR /app
COPY a.txt /app/a.txt
RUN date +%s%N > /stamp && head -c 2000 /dev/urandom > /app/random
COPY b.txt /app/b.txt
ENV GREETING=hello
`;

test('machine B reuses machine A\'s steps through --cache-to/--cache-from: all cached, same digest, only the needed blobs', async () => {
  const dir = context('ab', STAMP_DOCKERFILE, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
  const cache = `${gitea.registry}/giteaadmin/rc-cache:main`;
  const ma = machine('a');
  const a = await build(ma, dir, ['-t', `${gitea.registry}/giteaadmin/rc-app:1`, '--push', '--cache-to', `type=registry,ref=${cache}`]);
  assert.is(a.code, 0, a.stderr);
  assert.ok([...a.steps.values()].every((s) => s === 'done'), `A ran every step: ${[...a.steps]}`);
  assert.ok(a.events.some((e) => e.type === 'step' && e.name?.startsWith(`exporting cache to ${cache}`) && e.status === 'done'), 'export step reported');
  // The step layers were just pushed with the image: the export mounts them from its repository instead of uploading again.
  const exportStart = a.events.findIndex((e) => e.type === 'step' && e.name?.startsWith('exporting cache'));
  const exportBlobs = a.events.slice(exportStart).filter((e) => e.type === 'blob' && e.done);
  assert.ok(exportBlobs.some((e) => e.action === 'mount'), `mounted: ${JSON.stringify(exportBlobs.map((e) => e.action))}`);

  // An unchanged rebuild on A exports the same cache manifest: one HEAD, nothing pushed.
  const a2 = await build(ma, dir, ['-t', `${gitea.registry}/giteaadmin/rc-app:1`, '--push', '--cache-to', `type=registry,ref=${cache}`]);
  assert.is(a2.code, 0, a2.stderr);
  assert.is(a2.digest, a.digest);
  assert.ok(a2.events.some((e) => e.type === 'info' && e.message?.startsWith(`${cache} is already sha256:`)), 'the cache tag already points at the same manifest');
  assert.not.ok(a2.events.some((e) => e.type === 'blob' && (e.action === 'push' || e.action === 'mount')), 'no blob sent');

  const mb = machine('b');
  const b = await build(mb, dir, ['--cache-from', `type=registry,ref=${cache}`]);
  assert.is(b.code, 0, b.stderr);
  assert.is(b.steps.size, 5);
  assert.equal([...b.steps.values()], ['cached', 'cached', 'cached', 'cached', 'cached'], `B: ${[...b.steps]}`);
  assert.is(b.digest, a.digest, 'same manifest digest: the RUN layer was reused, not rerun');
  assert.ok(b.events.some((e) => e.type === 'step' && e.name === `importing cache manifest from ${cache}`), 'import step reported');

  // B downloaded the base image, the cache's config and the layers of the hits: nothing else.
  const image = await inspectRaw(`${gitea.registry}/giteaadmin/rc-app:1`);
  const baseManifest = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(baseReg), `docker://${base}`]);
  const cacheManifest = await inspectRaw(cache);
  const expected = new Set<string>([...image.layers.map((l: { digest: string }) => l.digest), JSON.parse(baseManifest.stdout).config.digest, cacheManifest.config.digest]);
  assert.equal([...b.pulled].sort(), [...expected].sort());

  // The imported records are local now: B's next build hits without the registry.
  const b2 = await build(mb, dir, []);
  assert.is(b2.code, 0, b2.stderr);
  assert.equal([...b2.steps.values()], ['cached', 'cached', 'cached', 'cached', 'cached']);
  assert.is(b2.pulled.size, 0, `nothing downloaded: ${[...b2.pulled]}`);
  assert.is(b2.digest, a.digest);
});

test('skopeo inspect: the cache is an ordinary OCI image manifest with an OCI image config and annotations', async () => {
  const cache = `${gitea.registry}/giteaadmin/rc-cache:main`;
  const m = await inspectRaw(cache);
  assert.is(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.is(m.config.mediaType, 'application/vnd.oci.image.config.v1+json');
  assert.is(m.artifactType, undefined);
  assert.is(m.annotations['dev.ocistack.cache.version'], '1');
  assert.is(m.annotations['dev.ocistack.cache.mode'], 'min');
  assert.ok(m.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip'));
  const c = await inspectRaw(cache, true);
  assert.is(c.os, 'linux');
  assert.ok(typeof c.architecture === 'string' && c.architecture.length > 0);
  assert.is(c.rootfs.type, 'layers');
  assert.is(c.rootfs.diff_ids.length, m.layers.length);
  const records = c['ocistack.cache'].records as { key: string; layers: { digest: string }[]; description: string }[];
  assert.is(records.length, 5, 'one record per step of the stage');
  assert.is(m.annotations['dev.ocistack.cache.records'], '5');
  assert.equal(records.flatMap((r) => r.layers.map((l) => l.digest)), m.layers.map((l: { digest: string }) => l.digest));
  assert.ok(records.some((r) => r.description.includes('RUN date')));
});

test('mode=min exports the final image\'s stages only, mode=max every stage', async () => {
  const dir = context('modes', `ARG BASE
FROM \${BASE} AS builder
RUN date +%s%N > /built
RUN echo tool > /tool

FROM \${BASE}
COPY --from=builder /built /built
COPY a.txt /a.txt
`, { 'a.txt': 'a\n' });
  const min = `${gitea.registry}/giteaadmin/rc-cache:min`;
  const max = `${gitea.registry}/giteaadmin/rc-cache:max`;
  // Two exports of one build (repeatable --cache-to).
  const a = await build(machine('modes-a'), dir, ['--cache-to', `type=registry,ref=${min}`, '--cache-to', `type=registry,ref=${max},mode=max`]);
  assert.is(a.code, 0, a.stderr);
  assert.is((await inspectRaw(min, true))['ocistack.cache'].records.length, 2, 'min: the final stage\'s two steps');
  assert.is((await inspectRaw(max, true))['ocistack.cache'].records.length, 4, 'max: all four steps');

  const bMin = await build(machine('modes-bmin'), dir, ['--cache-from', min]);
  assert.is(bMin.code, 0, bMin.stderr);
  assert.is(stepStatus(bMin, 'RUN date +%s%N > /built'), 'done', 'min: the builder stage runs again');
  assert.is(stepStatus(bMin, 'RUN echo tool > /tool'), 'done');
  // The final stage's files chain from the builder's layers: B's builder made another
  // /built (date), so COPY --from and everything after it miss, and the image holds B's
  // own /built, never A's cached copy of another run's output.
  assert.is(stepStatus(bMin, 'COPY --from=builder /built /built'), 'done');
  assert.is(stepStatus(bMin, 'COPY a.txt /a.txt'), 'done');
  assert.is.not(bMin.digest, a.digest);

  const bMax = await build(machine('modes-bmax'), dir, ['--cache-from', `type=registry,ref=${max}`]);
  assert.is(bMax.code, 0, bMax.stderr);
  assert.equal([...bMax.steps.values()], ['cached', 'cached', 'cached', 'cached'], `max: ${[...bMax.steps]}`);
  assert.is(bMax.digest, a.digest);
});

test('a changed source file on B: its COPY and the later steps miss (their cached layers are not fetched), earlier steps hit', async () => {
  const files = { 'a.txt': 'a\n', 'b.txt': 'b\n' };
  const dockerfile = `ARG BASE
FROM \${BASE}
COPY a.txt /a.txt
RUN cat /a.txt > /a.copy && date +%s%N >> /a.copy
COPY b.txt /b.txt
RUN date +%s%N > /after
`;
  const cache = `${gitea.registry}/giteaadmin/rc-cache:changed`;
  // SOURCE_DATE_EPOCH, as CI should set it: a fresh checkout's mtimes then do not reach the keys.
  const epoch = ['--source-date-epoch', '1700000000'];
  const a = await build(machine('chg-a'), context('chg-a', dockerfile, files), [...epoch, '--cache-to', `type=registry,ref=${cache}`]);
  assert.is(a.code, 0, a.stderr);
  // B: another checkout (new files, new mtimes) with b.txt changed.
  const bDir = context('chg-b', dockerfile, { ...files, 'b.txt': 'changed\n' });
  const b = await build(machine('chg-b'), bDir, [...epoch, '--cache-from', cache]);
  assert.is(b.code, 0, b.stderr);
  assert.is(stepStatus(b, 'COPY a.txt /a.txt'), 'cached');
  assert.is(stepStatus(b, 'RUN cat /a.txt > /a.copy && date +%s%N >> /a.copy'), 'cached');
  assert.is(stepStatus(b, 'COPY b.txt /b.txt'), 'done');
  assert.is(stepStatus(b, 'RUN date +%s%N > /after'), 'done');
  assert.is.not(b.digest, a.digest);

  const records = (await inspectRaw(cache, true))['ocistack.cache'].records as { description: string; layers: { digest: string }[] }[];
  const layersOf = (what: string) => records.filter((r) => r.description.includes(what)).flatMap((r) => r.layers.map((l) => l.digest));
  for (const d of layersOf('RUN cat')) assert.ok(b.pulled.has(d), 'the hit\'s layer was fetched');
  const missed = [...layersOf('COPY b.txt'), ...layersOf('RUN date')];
  assert.is(missed.length, 2);
  for (const d of missed) assert.not.ok(b.pulled.has(d), `layer ${d} of a missed step was fetched`);
});

test('--cache-from a ref that does not exist: the build succeeds with a warning (and --insecure covers cache refs)', async () => {
  const dir = context('nope', STAMP_DOCKERFILE, { 'a.txt': 'a\n', 'b.txt': 'b\n' });
  // No -t: --insecure applies to the --cache-from registry (before, it had nothing to apply to: exit 2).
  const b = await build(machine('nope'), dir, ['--insecure', '--cache-from', `type=registry,ref=${gitea.registry}/giteaadmin/rc-cache:does-not-exist`]);
  assert.is(b.code, 0, b.stderr);
  assert.ok(b.warnings.some((w) => w.includes('rc-cache:does-not-exist') && w.includes('does not exist')), b.warnings.join('\n'));
  assert.ok([...b.steps.values()].every((s) => s === 'done'));
});

async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

test('--cache-to an unreachable registry: exit 1 naming the registry; with ignore-error=true exit 0 and a warning', async () => {
  const dir = context('unreach', `ARG BASE\nFROM \${BASE}\nCOPY a.txt /a.txt\n`, { 'a.txt': 'a\n' });
  const host = `localhost:${await closedPort()}`;
  const m = machine('unreach');
  const failed = await build(m, dir, ['--cache-to', `type=registry,ref=${host}/giteaadmin/cache:1`]);
  assert.is(failed.code, 1, failed.stderr);
  assert.match(failed.stderr, new RegExp(`error: registry ${host}: cannot export the build cache to ${host}/giteaadmin/cache:1`));
  assert.match(failed.stderr, /ignore-error=true/);

  const ignored = await build(m, dir, ['--cache-to', `type=registry,ref=${host}/giteaadmin/cache:1,ignore-error=true`]);
  assert.is(ignored.code, 0, ignored.stderr);
  assert.match(ignored.digest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(ignored.warnings.some((w) => w.includes(host) && w.includes('ignore-error')), ignored.warnings.join('\n'));
});

test('a hit whose layer the cache registry lost: a warning, that step runs (and the steps after its new layer)', async () => {
  const dir = context('lost', `ARG BASE
FROM \${BASE}
COPY a.txt /a.txt
RUN date +%s%N > /d1
RUN echo after > /after
`, { 'a.txt': 'lost\n' });
  const cache = `${gitea.registry}/giteaadmin/rc-cache:lost`;
  const a = await build(machine('lost-a'), dir, ['--cache-to', `type=registry,ref=${cache}`]);
  assert.is(a.code, 0, a.stderr);
  const records = (await inspectRaw(cache, true))['ocistack.cache'].records as { description: string; layers: { digest: string }[] }[];
  const lost = records.find((r) => r.description.includes('RUN date'))!.layers[0]!.digest;
  // Gone from the registry's storage (docker-registry answers 404 for it from now on).
  rmSync(join(gitea.dataDir, 'docker/registry/v2/blobs/sha256', lost.slice(7, 9), lost.slice(7), 'data'));
  const b = await build(machine('lost-b'), dir, ['--cache-from', cache]);
  assert.is(b.code, 0, b.stderr);
  assert.is(stepStatus(b, 'COPY a.txt /a.txt'), 'cached');
  assert.is(stepStatus(b, 'RUN date +%s%N > /d1'), 'done');
  // It made another layer (date), so the step after it chains from different files and runs too.
  assert.is(stepStatus(b, 'RUN echo after > /after'), 'done');
  assert.ok(b.warnings.some((w) => w.includes('cannot fetch the layers') && w.includes('RUN date')), b.warnings.join('\n'));
});

/** The base registry's nginx access log (one line per request, `auth="..."` last). */
function baseAccessLog(): string[] {
  return (baseReg.proxy!.logs().split('--- nginx access.log\n')[1] ?? '').split('\n').filter(Boolean);
}

test('--creds (and registry.credentials) without -t go to the --cache-to registry (the export authenticates) and never to the base image\'s', async () => {
  const dir = context('creds', `ARG BASE\nFROM \${BASE}\nCOPY a.txt /a.txt\n`, { 'a.txt': 'creds\n' });
  const before = baseAccessLog().length;
  const tokensBefore = baseReg.token!.requests().length;
  const cache = `${gitea.registry}/giteaadmin/rc-cache:creds`;
  const r = await build(machine('creds'), dir, ['--cache-to', `type=registry,ref=${cache}`]);
  assert.is(r.code, 0, r.stderr);
  assert.is((await inspectRaw(cache)).annotations['dev.ocistack.cache.records'], '1');
  // The library: registry.credentials without credentialsFor are scoped to the cache registry too.
  const lm = machine('creds-lib');
  const libCache = `${gitea.registry}/giteaadmin/rc-cache:creds-lib`;
  const env = { HOME: lm.home };
  await libraryBuild({
    context: dir,
    buildArgs: { BASE: base },
    cacheDir: lm.cacheDir,
    env,
    cacheTo: [{ type: 'registry', ref: libCache }],
    registry: { caFile: gitea.caFile, env, credentials: { username: gitea.username, password: gitea.password } },
  });
  assert.is((await inspectRaw(libCache)).annotations['dev.ocistack.cache.records'], '1');
  await new Promise((res) => setTimeout(res, 200)); // nginx writes its line after answering
  const lines = baseAccessLog().slice(before);
  assert.ok(lines.length > 0, 'the base image was pulled through the logging proxy');
  assert.equal(lines.filter((l) => /auth="Basic /i.test(l)), [], 'Basic credentials reached the base registry');
  assert.ok(!lines.join('\n').includes(Buffer.from(`${gitea.username}:${gitea.password}`).toString('base64')));
  assert.equal(baseReg.token!.requests().slice(tokensBefore).map((t) => t.user).filter(Boolean), [], 'the base token service saw a user');
});

test('bad --cache-to/--cache-from values are usage errors (exit 2) with a hint', async () => {
  const dir = context('bad', `ARG BASE\nFROM \${BASE}\n`, {});
  const m = machine('bad');
  const cases: [string, string, RegExp][] = [
    ['--cache-to', `ref=${gitea.registry}/o/c:1`, /has no type/],
    ['--cache-to', `type=local,dest=/tmp/x`, /type "local" is not supported/],
    ['--cache-to', `type=registry`, /has no ref/],
    ['--cache-to', `type=registry,ref=${gitea.registry}/o/c:1,mode=all`, /mode "all" is neither min nor max/],
    ['--cache-to', `type=registry,ref=${gitea.registry}/o/c:1,ignore-error=yes`, /ignore-error="yes"/],
    ['--cache-to', `type=registry,ref=${gitea.registry}/o/c@sha256:${'0'.repeat(64)}`, /names a digest/],
    ['--cache-to', `${gitea.registry}/o/c:1`, /is not TYPE=/],
    ['--cache-to', `type=registry,ref=${gitea.registry}/o/c:1,compression=zstd`, /no key "compression"/],
    ['--cache-from', `type=registry,ref=${gitea.registry}/o/c:1,mode=max`, /mode= is for --cache-to/],
    ['--cache-from', `type=registry,ref=Not A Ref`, /invalid image reference/],
  ];
  for (const [flag, value, want] of cases) {
    const r = await build(m, dir, [flag, value]);
    assert.is(r.code, 2, `${flag} ${value}: ${r.stderr}`);
    assert.match(r.stderr, want, `${flag} ${value}`);
    assert.match(r.stderr, /hint: /, `${flag} ${value}`);
  }
  // A cache under one of the image's tags would replace the image.
  const tag = `${gitea.registry}/giteaadmin/rc-app:same`;
  const same = await build(m, dir, ['-t', tag, '--push', '--cache-to', `type=registry,ref=${tag}`]);
  assert.is(same.code, 2, same.stderr);
  assert.match(same.stderr, /is also a tag of the image/);
});

test.run();
