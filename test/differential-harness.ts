/**
 * The machinery of the differential suite (test/differential.test.ts and
 * test/differential-rootless.test.ts, which says what is compared): the
 * fixtures, the registry with the busybox and special images, contexts and
 * Dockerfiles per fixture, ocistack's build (in this process as root, or the
 * bin as the rootless user), Buildah's reference tree and the accepted
 * differences. One process per test file, so the module state is that file's.
 */
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../lib/engine/build.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase, busyboxLayout, buildahBuild } from './helpers/images.js';
import { makeTempDir, requireTool, run, runOk } from './helpers/tools.js';
import { giveToUser, ocistackAsUser, rootlessWork, type RootlessWork } from './helpers/rootless-cli.js';
import { ROOTLESS_RANGE } from './helpers/rootless-user.js';
import { skopeoArgs } from './helpers/registry.js';
import { listTree, parseAccepted } from './differential-util.js';

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
export const fixtures = [...fixtureDirOf.keys()].filter((n) => !only || only.split(',').includes(n)).sort();
/** A fixture's directory, by its name in `fixtures`. */
export function fixtureDir(name: string): string {
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
/** The base image's unpacked tree (after setupDifferential). */
export function baseTreeOf(): Map<string, string> {
  return baseTree;
}
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
export async function prepareContext(name: string): Promise<string> {
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

export async function buildOurs(name: string, ctx: string): Promise<Map<string, string>> {
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

/** The rootless user's work dir (HOME, cache dir, contexts, outputs), made in test.before when needed. */
let rootless: RootlessWork | undefined;

/**
 * The fixture built by `ocistack build` (the bin) running as the rootless
 * user: context, Dockerfile and CA copied into its work dir, owned by it;
 * the output layout is read (unpacked by umoci) as root.
 */
export async function buildOursRootless(name: string, ctx: string): Promise<Map<string, string>> {
  const w = rootless!;
  const s = slug(name);
  const userCtx = giveToUser(w, ctx, `ctx-${s}`);
  const dockerfile = giveToUser(w, dockerfileFor(name), `Dockerfile-${s}`);
  const ca = giveToUser(w, reg.caFile, 'ca.pem');
  const dest = path.join(w.dir, `out-${s}`);
  const r = await ocistackAsUser(w, [
    'build', userCtx, '-f', dockerfile, '--build-arg', `BASE=${baseRef}`, '-t', `${reg.host}/fixtures/${s}-rootless:latest`,
    '--output', `type=oci,dest=${dest}`, '--ca-file', ca, '--progress', 'plain',
  ]);
  if (r.code !== 0) assert.unreachable(`rootless ocistack build of ${name} exited ${r.code}:\n${r.stderr.slice(-4000)}`);
  assert.ok(ownedBySubordinateId(w.cacheDir), 'no file in the rootless cache dir is owned by a subordinate id: the RUN steps did not run in a user namespace');
  return unpack(dest, refName(dest), `ours-rootless-${s}`);
}

/**
 * Whether some path below `dir` is owned by the rootless user's subordinate
 * ids on the host: the snapshot of /home/app (1000 in the image) is, when it
 * was extracted in the user namespace; proof that the rootless path ran.
 */
function ownedBySubordinateId(dir: string): boolean {
  const inRange = (uid: number) => uid >= ROOTLESS_RANGE.start && uid < ROOTLESS_RANGE.start + ROOTLESS_RANGE.count;
  const walk = (d: string): boolean => {
    for (const n of fs.readdirSync(d)) {
      const p = path.join(d, n);
      const st = fs.lstatSync(p);
      if (inRange(st.uid)) return true;
      if (st.isDirectory() && walk(p)) return true;
    }
    return false;
  };
  return walk(dir);
}

/** Buildah's tree per fixture (built once, as root; the rootless run compares against the same one). */
const buildahTrees = new Map<string, Promise<Map<string, string>>>();
export function buildahTree(name: string): Promise<Map<string, string>> {
  let p = buildahTrees.get(name);
  if (!p) {
    p = (async () => {
      // Buildah gets its own copy: a build must not see what the other one did.
      const ctx2 = await prepareContext(name);
      const theirs = await buildahBuild(ctx2, { dockerfile: dockerfileFor(name), registry: reg, buildArgs: { BASE: baseRef } });
      return unpack(theirs.layoutDir, theirs.tag, `buildah-${slug(name)}`);
    })();
    buildahTrees.set(name, p);
  }
  return p;
}

/** The accepted differences of a fixture: its set's file(s), then its own (`differences.txt`, plus `differences-rootless.txt` for the rootless build). */
export function acceptedFor(dir: string, rootlessBuild: boolean): Map<string, Set<string>> {
  const accepted = new Map<string, Set<string>>();
  const names = rootlessBuild ? ['differences.txt', 'differences-rootless.txt'] : ['differences.txt'];
  const files = [...names.map((n) => path.join(path.dirname(dir), n)), ...names.map((n) => path.join(dir, n))];
  for (const acceptedFile of files) {
    if (!fs.existsSync(acceptedFile)) continue;
    for (const [p, fields] of parseAccepted(fs.readFileSync(acceptedFile, 'utf8'), acceptedFile)) {
      accepted.set(p, new Set([...(accepted.get(p) ?? []), ...fields]));
    }
  }
  return accepted;
}

/** Start the registry and HTTP server, push the base and special images, unpack the base (test.before). */
export async function setupDifferential(): Promise<void> {
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
}

/** Stop what setupDifferential started (test.after). */
export async function teardownDifferential(): Promise<void> {
  httpServer?.close();
  await reg?.stop();
}

/** Create the rootless user and its work dir, for buildOursRootless. */
export function setupRootless(): void {
  requireTool('newuidmap');
  rootless = rootlessWork('differential-rootless');
}
