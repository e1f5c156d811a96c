/**
 * Differential tests: every fixture in fixtures/copy/ and fixtures/run/ is
 * built with ocistack (RUN steps by its default executor, runc) and with
 * Buildah (`buildah bud`, chroot isolation, vfs) from the same busybox
 * base in a local TLS registry; both images are unpacked with umoci and every
 * path's type, mode, owner, size, content, link target, hard-link group
 * (which paths share an inode), device numbers and xattrs must match
 * (test/differential-util.ts).
 *
 * Fixtures using what Buildah 1.28 lacks (heredocs, --parents, --exclude,
 * --link, symbolic --chmod) have an `expected.txt` instead: the paths that
 * differ from the base image, listed by hand from current BuildKit's
 * documented behaviour, each file citing its source.
 *
 * `@SPECIAL@` in a Dockerfile names an image with devices, a FIFO, hard
 * links and a security.capability xattr (pushSpecialImage).
 *
 * A fixture's optional `setup.sh` runs in a fresh copy of its context first
 * (hard links, modes, archives: what git cannot store). Accepted differences
 * from Buildah are listed per fixture in `differences.txt` (`PATH FIELD,...`
 * per line: only those fields of that path may differ, and each listed one
 * must) and explained in docs/differences.md; a set's own `differences.txt`
 * (fixtures/run/differences.txt) applies to each of its fixtures.
 *
 * Run: node dist/test/differential.test.js  (FIXTURE=name,run/name to pick fixtures).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../lib/build/build.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase, busyboxLayout, buildahBuild } from './helpers/images.js';
import { makeTempDir, requireTool, run, runOk } from './helpers/tools.js';
import { skopeoArgs } from './helpers/registry.js';
import { changes, compareTrees, listTree, parseAccepted, unaccepted } from './differential-util.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * The fixture sets this suite walks: COPY/ADD semantics, and RUN steps (run by
 * ocistack's default executor, runc, and by Buildah's chroot isolation).
 * Fixtures are named by directory; `run/` ones as `run/NAME` so that
 * FIXTURE= can pick either (`FIXTURE=hardlinks`, `FIXTURE=run/hardlinks`).
 */
const FIXTURE_DIRS = ['copy', 'run'] as const;
const fixturesDir = path.join(repo, 'fixtures', 'copy');
const only = process.env.FIXTURE;
const fixtureDirOf = new Map<string, string>();
for (const set of FIXTURE_DIRS) {
  const root = path.join(repo, 'fixtures', set);
  if (!fs.existsSync(root)) continue;
  for (const n of fs.readdirSync(root)) {
    if (!fs.existsSync(path.join(root, n, 'Dockerfile'))) continue;
    fixtureDirOf.set(set === 'copy' ? n : `${set}/${n}`, path.join(root, n));
  }
}
const fixtures = [...fixtureDirOf.keys()].filter((n) => !only || only.split(',').includes(n)).sort();
/** A fixture's directory, by its name in `fixtures`. */
function fixtureDir(name: string): string {
  return fixtureDirOf.get(name)!;
}
/** A fixture name usable in file and image names (`run/x` -> `run-x`). */
function slug(name: string): string {
  return name.replaceAll('/', '-');
}

let reg: TestRegistry;
/** Serves `fixtures/copy/<name>/http/` at `@HTTP@/<name>/...` for ADD <url> fixtures. */
let httpServer: http.Server;
let httpBase: string;
let baseRef: string;
/** An image with what git cannot store in a context (see pushSpecialImage), for `@SPECIAL@`. */
let specialRef: string;
let baseTree: Map<string, string>;
const work = makeTempDir('differential');
const cacheDir = path.join(work, 'cache');

/**
 * Push an image whose only layer (GNU tar, PAX) holds /special/links (two
 * hard-linked files and a file with security.capability) and /special/devs
 * (a character and a block device and a FIFO), so that COPY --from can be
 * compared with Buildah on hard-link groups, xattrs and devices.
 */
async function pushSpecialImage(): Promise<string> {
  const umoci = requireTool('umoci');
  const w = makeTempDir('special-image');
  const devs = path.join(w, 'src', 'special', 'devs');
  fs.mkdirSync(devs, { recursive: true });
  await runOk('mknod', ['-m', '0666', path.join(devs, 'null'), 'c', '1', '3']);
  await runOk('mknod', ['-m', '0660', path.join(devs, 'loop'), 'b', '7', '0']);
  await runOk('mknod', ['-m', '0644', path.join(devs, 'fifo'), 'p']);
  const src = path.join(w, 'src', 'special', 'links');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'one'), 'one\n');
  fs.linkSync(path.join(src, 'one'), path.join(src, 'two'));
  fs.writeFileSync(path.join(src, 'capfile'), '#!/bin/sh\n');
  fs.chmodSync(path.join(src, 'capfile'), 0o755);
  await runOk(requireTool('setcap'), ['cap_net_bind_service=+ep', path.join(src, 'capfile')]);
  const layer = path.join(w, 'layer.tar');
  await runOk('tar', ['--xattrs', '--xattrs-include=security.capability', '--format=pax', '--numeric-owner', '-cf', layer, '-C', path.join(w, 'src'), 'special']);
  const dir = path.join(w, 'layout');
  await runOk(umoci, ['init', '--layout', dir]);
  await runOk(umoci, ['new', '--image', `${dir}:special`]);
  await runOk(umoci, ['raw', 'add-layer', '--image', `${dir}:special`, layer]);
  const ref = `${reg.host}/fixtures/special:1`;
  const r = await run(requireTool('skopeo'), ['copy', '--quiet', ...skopeoArgs(reg, 'dest'), `oci:${dir}:special`, `docker://${ref}`]);
  if (r.code !== 0) throw new Error(`skopeo copy of the special image failed: ${r.stderr}`);
  return ref;
}

async function unpack(layoutDir: string, tag: string, name: string): Promise<Map<string, string>> {
  const bundle = path.join(work, `bundle-${name}-${Math.random().toString(16).slice(2)}`);
  await runOk(requireTool('umoci'), ['unpack', '--image', `${layoutDir}:${tag}`, bundle]);
  const tree = listTree(path.join(bundle, 'rootfs'));
  fs.rmSync(bundle, { recursive: true, force: true });
  return tree;
}

function refName(layoutDir: string): string {
  const index = JSON.parse(fs.readFileSync(path.join(layoutDir, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
  const names = index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((x): x is string => !!x);
  if (names.length !== 1) throw new Error(`expected one tagged manifest in ${layoutDir}, got ${names.join(', ') || 'none'}`);
  return names[0]!;
}

/** A fresh copy of the fixture's context with its setup.sh applied. */
async function prepareContext(name: string): Promise<string> {
  const ctx = path.join(work, `ctx-${slug(name)}`);
  fs.rmSync(ctx, { recursive: true, force: true });
  fs.mkdirSync(ctx, { recursive: true });
  // RUN fixtures may need no context at all.
  const context = path.join(fixtureDir(name), 'context');
  if (fs.existsSync(context)) await runOk('cp', ['-a', context + '/.', ctx + '/']);
  const setup = path.join(fixtureDir(name), 'setup.sh');
  if (fs.existsSync(setup)) await runOk('sh', [setup], { cwd: ctx });
  return ctx;
}

/**
 * The fixture's Dockerfile with `@BASE@` replaced by the base reference
 * (`COPY --from` takes no variables, and the registry port changes per run).
 */
function dockerfileFor(name: string): string {
  const text = fs.readFileSync(path.join(fixtureDir(name), 'Dockerfile'), 'utf8');
  const out = path.join(work, `Dockerfile-${slug(name)}`);
  fs.writeFileSync(out, text.replaceAll('@BASE@', baseRef).replaceAll('@HTTP@', httpBase).replaceAll('@SPECIAL@', specialRef));
  const ignore = path.join(fixtureDir(name), 'Dockerfile.dockerignore');
  if (fs.existsSync(ignore)) fs.copyFileSync(ignore, `${out}.dockerignore`);
  return out;
}

async function buildOurs(name: string, ctx: string): Promise<Map<string, string>> {
  const dest = path.join(work, `ours-${slug(name)}`);
  await build({
    context: ctx,
    dockerfile: dockerfileFor(name),
    buildArgs: { BASE: baseRef },
    tags: [`${reg.host}/fixtures/${slug(name)}:latest`],
    output: [{ type: 'oci', dest }],
    registry: { caFile: reg.caFile },
    cacheDir,
  });
  return unpack(dest, refName(dest), `ours-${slug(name)}`);
}

test.before(async () => {
  httpServer = http.createServer((req, res) => {
    const rel = decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, '');
    const [name, ...rest] = rel.split('/');
    const file = path.join(fixturesDir, name ?? '', 'http', ...rest);
    if (!name || rest.some((p) => p === '..') || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Last-Modified': new Date(Date.UTC(2020, 0, 2, 3, 4, 5)).toUTCString() });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  httpBase = `http://127.0.0.1:${(httpServer.address() as { port: number }).port}`;
  reg = await startRegistry({ auth: 'none' });
  baseRef = await busyboxBase(reg);
  specialRef = await pushSpecialImage();
  const layout = await busyboxLayout();
  baseTree = await unpack(layout.dir, layout.tag, 'base');
});

test.after(async () => {
  httpServer?.close();
  await reg?.stop();
});

for (const name of fixtures) {
  test(name, async () => {
    const dir = fixtureDir(name);
    const expectedFile = path.join(dir, 'expected.txt');
    const ctx = await prepareContext(name);
    const ours = await buildOurs(name, ctx);
    if (fs.existsSync(expectedFile)) {
      const expected = fs.readFileSync(expectedFile, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
      assert.equal(changes(baseTree, ours), expected.sort(), `${name}: paths changed from the base differ from expected.txt`);
      return;
    }
    // Buildah gets its own copy: a build must not see what the other one did.
    const ctx2 = await prepareContext(name);
    const theirs = await buildahBuild(ctx2, { dockerfile: dockerfileFor(name), registry: reg, buildArgs: { BASE: baseRef } });
    const theirTree = await unpack(theirs.layoutDir, theirs.tag, `buildah-${slug(name)}`);
    // A set may accept differences for all its fixtures (fixtures/run/differences.txt:
    // Buildah's RUN mount targets); a fixture's own file adds to them.
    const accepted = new Map<string, Set<string>>();
    for (const acceptedFile of [path.join(path.dirname(dir), 'differences.txt'), path.join(dir, 'differences.txt')]) {
      if (!fs.existsSync(acceptedFile)) continue;
      for (const [p, fields] of parseAccepted(fs.readFileSync(acceptedFile, 'utf8'), acceptedFile)) {
        accepted.set(p, new Set([...(accepted.get(p) ?? []), ...fields]));
      }
    }
    const problems = unaccepted(compareTrees(ours, theirTree), accepted);
    if (problems.length) assert.unreachable(`${name}: ${problems.length} difference(s) from buildah not as accepted:\n${problems.join('\n')}`);
    // The fixture must change something, or it compares nothing.
    assert.ok(changes(baseTree, ours).length > 0, `${name}: the build changed nothing`);
  });
}

test.run();
