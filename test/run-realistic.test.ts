/**
 * Issue 9's realistic RUN builds, as root and rootless (user
 * `ocistack-rootless` with a subordinate id range, made by the test as in
 * runc-rootless.test.ts, running the real CLI):
 *
 * - fixtures/realistic/apt-hello: `FROM` a debootstrap'd Debian 12 minbase
 *   image, `RUN apt-get update && apt-get install -y --no-install-recommends
 *   hello` from the machine's Debian mirror. apt downloads as `_apt` (uid
 *   42, after setgroups/setgid/setuid), so rootless this needs the
 *   namespace to map more than root.
 * - fixtures/realistic/node-app: `FROM` the Debian Node base (nodejs 18 and
 *   npm), `RUN npm ci` fetching is-number from the npm registry over the host
 *   network, with a poisoned ~/.npmrc in ocistack's HOME that must not reach the RUN.
 *
 * Each image is pushed to a real registry, pulled with skopeo, unpacked with
 * umoci and run with runc; it must print what it installed. The Debian bases
 * come from test/helpers/debian-base.ts (cached in /var/cache/ocistack-test;
 * scripts/test.sh makes them before the test files run).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { withRegistry, skopeoArgs, type TestRegistry } from './helpers/registry.js';
import { runOciLayout } from './helpers/images.js';
import { BIN, ocistack, REPO_ROOT, type CliResult } from './helpers/cli.js';
import { MINBASE, NODE_BASE, pushDebianBase } from './helpers/debian-base.js';
import { ensureRootlessUser, rootlessReachableTempDir } from './helpers/rootless-user.js';
import { makeTempDir, removeTempDir, requireTool, runOk } from './helpers/tools.js';

let reg: TestRegistry;
let debian: string;
let node: string;
let user: { name: string; uid: number; gid: number };

const FIXTURES = join(REPO_ROOT, 'fixtures', 'realistic');
const BUILD_TIMEOUT_MS = 8 * 60_000;
/** A ~/.npmrc that breaks npm if it were read: the RUN must not see the builder's npm config. */
const POISON_NPMRC = 'registry=http://127.0.0.1:9/\ncache=/nonexistent/npm-cache\n';

test.before(async () => {
  requireTool('runc');
  requireTool('newuidmap');
  user = ensureRootlessUser();
  reg = await withRegistry('none');
  const t0 = Date.now();
  debian = await pushDebianBase(reg, MINBASE);
  node = await pushDebianBase(reg, NODE_BASE);
  console.log(`  Debian bases found or made and pushed in ${since(t0)}`);
});

/** A dir tree the rootless user owns, reachable through the test run's (root, often 0700) temp dirs. */
function userDir(prefix: string): string {
  const dir = rootlessReachableTempDir(prefix);
  fs.chownSync(dir, user.uid, user.gid);
  return dir;
}

/** A HOME with a poisoned .npmrc, owned by `uid`. */
function poisonedHome(parent: string, uid: number, gid: number): string {
  const home = join(parent, 'home');
  fs.mkdirSync(home);
  fs.writeFileSync(join(home, '.npmrc'), POISON_NPMRC);
  fs.chownSync(home, uid, gid);
  fs.chownSync(join(home, '.npmrc'), uid, gid);
  return home;
}

/** The fixture copied into a fresh context dir (readable by everyone). */
function context(name: string): string {
  const dir = makeTempDir(`realistic-${name}`);
  fs.cpSync(join(FIXTURES, name), dir, { recursive: true });
  fs.chmodSync(dir, 0o755);
  return dir;
}

/** `ocistack build` as root, with a HOME of its own holding the poisoned .npmrc. */
async function buildAsRoot(ctx: string, base: string, ref: string): Promise<CliResult> {
  const home = poisonedHome(makeTempDir('realistic-home'), 0, 0);
  return ocistack(['build', ctx, '--build-arg', `BASE=${base}`, '-t', ref, '--push', '--ca-file', reg.caFile, '--progress', 'plain'], { env: { HOME: home } });
}

/** `ocistack build` as the rootless user: its own HOME and cache dir, the registry's CA in a file it can read. */
function buildAsUser(ctx: string, base: string, ref: string): Promise<CliResult> {
  const dir = userDir('realistic-rootless');
  const home = poisonedHome(dir, user.uid, user.gid);
  const cache = join(dir, 'cache');
  fs.mkdirSync(cache);
  fs.chownSync(cache, user.uid, user.gid);
  const ca = join(dir, 'ca.crt');
  fs.copyFileSync(reg.caFile, ca);
  fs.chmodSync(ca, 0o644);
  const args = [BIN, 'build', ctx, '--build-arg', `BASE=${base}`, '-t', ref, '--push', '--ca-file', ca, '--progress', 'plain'];
  const child = spawn(process.execPath, args, {
    uid: user.uid,
    gid: user.gid,
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, OCISTACK_CACHE_DIR: cache, NODE_DISABLE_COLORS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b));
  child.stderr.on('data', (b: Buffer) => (stderr += b));
  const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      removeTempDir(dir);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

interface TarEntry {
  mode: string;
  owner: string;
  name: string;
}

interface PulledImage {
  /** OCI layout holding the image as `img`. */
  layout: string;
  /** Blob paths of the layers, base first. */
  layers: string[];
}

/** Pull `ref` once with skopeo into a temp OCI layout (run, then read its layers). */
async function pull(ref: string): Promise<PulledImage> {
  const layout = join(makeTempDir('realistic-pull'), 'layout');
  await runOk(requireTool('skopeo'), ['copy', '--quiet', ...skopeoArgs(reg, 'src'), `docker://${ref}`, `oci:${layout}:img`], { timeoutMs: 300_000 });
  const blob = (d: string): string => join(layout, 'blobs', ...d.split(':'));
  const index = JSON.parse(fs.readFileSync(join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), 'utf8'));
  return { layout, layers: manifest.layers.map((l: { digest: string }) => blob(l.digest)) };
}

/** `tar -tvz --numeric-owner` of a layer blob, by path without the trailing slash. */
async function layerEntries(blob: string): Promise<Map<string, TarEntry>> {
  const out = await runOk('tar', ['-tvzf', blob, '--numeric-owner'], { timeoutMs: 120_000 });
  const map = new Map<string, TarEntry>();
  for (const line of out.split('\n').filter(Boolean)) {
    const m = /^(\S+)\s+(\d+\/\d+)\s+\d+\s+\S+\s+\S+\s+(.*?)(?: -> .*| link to .*)?$/.exec(line);
    if (m) map.set(m[3]!.replace(/\/$/, ''), { mode: m[1]!, owner: m[2]!, name: m[3]! });
  }
  return map;
}

/** Seconds since `t0`, for the log (the report's durations; never asserted). */
const since = (t0: number): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

async function checkHelloImage(ref: string): Promise<void> {
  const img = await pull(ref);
  const out = await runOciLayout(img.layout, 'img');
  assert.is(out.code, 0, out.stderr);
  assert.is(out.stdout, 'Hello, world!\n', 'the image runs the installed package');
  const last = img.layers[img.layers.length - 1]!;
  const layer = await layerEntries(last);
  assert.ok(layer.has('usr/bin/hello'), `the RUN layer has /usr/bin/hello: ${[...layer.keys()].slice(0, 20).join(' ')}`);
  assert.is(layer.get('usr/bin/hello')!.owner, '0/0');
  // dpkg's database in the layer says hello is installed (dpkg -s reads this file).
  const status = await runOk('tar', ['-xzOf', last, 'var/lib/dpkg/status']);
  assert.match(status, /^Package: hello\nStatus: install ok installed\n/m, 'dpkg status of hello');
  // apt's download dir belongs to _apt (uid 42): owners are the image's ids, not the host's subordinate ids.
  assert.is(layer.get('var/lib/apt/lists/partial')?.owner, '42/0', 'apt lists partial dir owned by _apt');
  for (const name of ['etc/resolv.conf', 'etc/hosts', 'etc/hostname', 'proc', 'dev', 'sys']) assert.not.ok(layer.has(name), `${name} is not in the layer`);
}

async function checkNodeImage(ref: string): Promise<void> {
  const img = await pull(ref);
  const out = await runOciLayout(img.layout, 'img');
  assert.is(out.code, 0, out.stderr);
  assert.is(out.stdout, 'is-number 7.0.0: 42 -> true, "forty-two" -> false\n', 'the app prints what npm ci installed');
  // Layers from the end: COPY index.js, RUN npm ci, COPY package*.json.
  const npmLayer = await layerEntries(img.layers[img.layers.length - 2]!);
  assert.ok(npmLayer.has('app/node_modules/is-number/index.js'), `npm ci's layer: ${[...npmLayer.keys()].slice(0, 20).join(' ')}`);
  assert.ok(npmLayer.has('app/node_modules/.package-lock.json'), 'npm ci wrote its hidden lockfile');
  assert.is(npmLayer.get('app/node_modules/is-number/index.js')!.owner, '0/0');
}

/** Build with `how`, check the build output, run and check the image; logs how long each part took. */
async function buildAndCheck(name: string, how: 'root' | 'rootless', base: string, expectOutput: RegExp, check: (ref: string) => Promise<void>, forbid?: RegExp): Promise<void> {
  const ref = `${reg.host}/giteaadmin/realistic-${name}:${how}`;
  const t0 = Date.now();
  const r = await (how === 'root' ? buildAsRoot : buildAsUser)(context(name), base, ref);
  const built = since(t0);
  assert.is(r.code, 0, r.stderr.split('\n').slice(-40).join('\n'));
  assert.match(r.stderr, expectOutput, 'the RUN output streams as progress');
  if (forbid) assert.not.match(r.stderr, forbid);
  const t1 = Date.now();
  await check(ref);
  console.log(`  ${name} (${how}): ocistack build + push ${built}, pull + runc run + layer checks ${since(t1)}`);
}

// apt warns (W:) and goes on as root when it cannot drop to _apt: that must not happen.
const APT_SANDBOX_TROUBLE = /W: .*(?:[Ss]andbox|seteuid|setgroups|setegid)|as root as file/;

test('root: apt-get install hello on Debian 12 from the configured mirror; the image runs hello', async () => {
  await buildAndCheck('apt-hello', 'root', debian, /Setting up hello/, checkHelloImage, APT_SANDBOX_TROUBLE);
});

test('rootless: apt-get install hello as ocistack-rootless (apt drops to _apt inside the namespace)', async () => {
  await buildAndCheck('apt-hello', 'rootless', debian, /Setting up hello/, checkHelloImage, APT_SANDBOX_TROUBLE);
});

test('root: a Node app whose RUN npm ci installs is-number from the npm registry; the image prints it', async () => {
  await buildAndCheck('node-app', 'root', node, /added 1 package/, checkNodeImage);
});

test('rootless: the Node app built by ocistack-rootless', async () => {
  await buildAndCheck('node-app', 'rootless', node, /added 1 package/, checkNodeImage);
});

test.run();
