/**
 * Debian base images for the realistic RUN tests (issue 9), made by the
 * test setup, not by ocistack's build:
 *
 *   debootstrap --variant=minbase SUITE ROOTFS MIRROR   (the machine's mirror, debian-mirror.ts)
 *   -> apt lists and .debs removed (as Docker's debian images are)
 *   -> one layer written with ocistack's writeLayer, an OCI config and
 *      manifest, an OCI layout (writeOciLayout)
 *
 * debootstrap takes minutes, so the layout is cached between runs in
 * OCISTACK_TEST_IMAGE_CACHE (default /var/cache/ocistack-test), in a
 * directory named by the suite, the packages and a hash of everything that
 * goes into the image (mirror, suite, include list, recipe version, the
 * extra CA certificates, npm's tarball). It is built in a temp dir beside
 * it and renamed into place, so concurrent runs never see half an image:
 * the loser of a race throws its copy away. debootstrap's downloaded .debs
 * are kept in `debs/` there too (its --cache-dir), so the second base
 * downloads only what the first lacks.
 *
 * The Node base adds, to `--include=ca-certificates,nodejs` (Debian's node
 * 18), the npm that upstream Node 18.20 bundles, from the npm registry
 * tarball (checked against its published sha512), laid out as the official
 * node images do (/usr/local/lib/node_modules/npm, /usr/local/bin/npm).
 * Debian's own npm package is not used: it depends on ~350 node-* packages
 * plus python3 and perl, which would make the cold CI run several minutes
 * longer. Both bases trust the machine's local CA certificates
 * (/usr/local/share/ca-certificates, added with update-ca-certificates):
 * where the machine's HTTPS goes through an intercepting proxy, that is
 * what a RUN's npm needs to reach the registry, as in a company's base image.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { BlobStore } from '../../lib/image/store.js';
import { withLock } from '../../lib/lock.js';
import { writeOciLayout } from '../../lib/image/layout.js';
import { MediaType, type ImageConfig, type ImageManifest } from '../../lib/image/types.js';
import { writeLayer } from '../../lib/layer/write.js';
import { captureOverlayUpper } from '../../lib/rootfs/capture.js';
import { debianMirror } from './debian-mirror.js';
import type { TestRegistry } from './registry.js';
import { skopeoArgs } from './registry.js';
import { makeTempDir, removeTempDir, requireTool, run, runOk } from './tools.js';

/** Bump when the recipe below changes what an image contains: old cache entries are then not used. */
const RECIPE = 3;

export const DEBIAN_SUITE = 'bookworm';
export const DEBIAN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** npm from the registry for the Node base: the version upstream Node 18.20.x ships with. */
export const NPM_TARBALL = {
  version: '10.7.0',
  url: 'https://registry.npmjs.org/npm/-/npm-10.7.0.tgz',
  integrity: 'sha512-FXylyYSXNjgXx3l82BT8RSQvCoGIQ3h8YdRFGKNvo3Pv/bKscK4pdWkx/onwTpHDqGw+oeLf4Rxln9WVyxAxlQ==',
};

export interface DebianBaseSpec {
  /** Short name in the cache dir and image tag: `minbase`, `node`. */
  name: string;
  /** debootstrap --include. */
  include: string[];
  /** Add npm from the registry (NPM_TARBALL). */
  npm?: boolean;
}

export const MINBASE: DebianBaseSpec = { name: 'minbase', include: [] };
export const NODE_BASE: DebianBaseSpec = { name: 'node', include: ['ca-certificates', 'nodejs'], npm: true };

export interface DebianImage {
  /** OCI layout holding the image as `latest`. */
  layout: string;
  tag: string;
  /** How it was obtained this time, and how long that took (ms). */
  cached: boolean;
  ms: number;
}

export function imageCacheRoot(): string {
  return process.env.OCISTACK_TEST_IMAGE_CACHE ?? '/var/cache/ocistack-test';
}

/** The machine's extra CA certificates (name -> PEM), sorted: part of the key. */
function localCaCerts(): [string, Buffer][] {
  const dir = '/usr/local/share/ca-certificates';
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n.endsWith('.crt')).sort().map((n) => [n, fs.readFileSync(join(dir, n))]);
}

function cacheKey(spec: DebianBaseSpec, mirror: string): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ RECIPE, mirror, suite: DEBIAN_SUITE, variant: 'minbase', include: [...spec.include].sort(), npm: spec.npm ? NPM_TARBALL : null, arch: arch() }));
  for (const [n, pem] of localCaCerts()) h.update(`\0${n}\0`).update(pem);
  return h.digest('hex').slice(0, 16);
}

function isLayout(dir: string): boolean {
  return fs.existsSync(join(dir, 'index.json')) && fs.existsSync(join(dir, 'oci-layout'));
}

async function download(url: string, integrity: string): Promise<Buffer> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  const [algo, want] = integrity.split('-', 2) as [string, string];
  const got = createHash(algo).update(body).digest('base64');
  if (got !== want) throw new Error(`${url}: ${algo} is ${got}, expected ${want}`);
  return body;
}

async function installNpm(rootfs: string, work: string): Promise<void> {
  const tgz = join(work, 'npm.tgz');
  fs.writeFileSync(tgz, await download(NPM_TARBALL.url, NPM_TARBALL.integrity));
  const dest = join(rootfs, 'usr/local/lib/node_modules/npm');
  fs.mkdirSync(dest, { recursive: true });
  await runOk('tar', ['-xzf', tgz, '-C', dest, '--strip-components=1', '--no-same-owner', '--no-same-permissions']);
  await runOk('chmod', ['-R', 'u+rwX,go+rX,go-w', dest]);
  for (const [bin, script] of [['npm', 'npm-cli.js'], ['npx', 'npx-cli.js']] as const) {
    fs.symlinkSync(`../lib/node_modules/npm/bin/${script}`, join(rootfs, 'usr/local/bin', bin));
  }
}

/** debootstrap into `rootfs`, then the recipe's additions; returns debootstrap's own time. */
async function makeRootfs(spec: DebianBaseSpec, mirror: string, rootfs: string, work: string, debs: string): Promise<void> {
  const debootstrap = requireTool('debootstrap');
  const args = ['--variant=minbase', `--cache-dir=${debs}`, ...(spec.include.length ? [`--include=${spec.include.join(',')}`] : []), DEBIAN_SUITE, rootfs, mirror];
  const r = await run(debootstrap, args, { timeoutMs: 15 * 60_000 });
  if (r.code !== 0) {
    const log = join(rootfs, 'debootstrap', 'debootstrap.log');
    const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') : '';
    throw new Error(`debootstrap ${args.join(' ')} failed (code ${r.code}):\n${r.stderr || r.stdout}\n${tail}`);
  }
  const certs = localCaCerts();
  if (certs.length && spec.include.includes('ca-certificates')) {
    for (const [n, pem] of certs) fs.writeFileSync(join(rootfs, 'usr/local/share/ca-certificates', n), pem, { mode: 0o644 });
    await runOk('chroot', [rootfs, 'update-ca-certificates'], { env: { PATH: DEBIAN_PATH } });
  }
  if (spec.npm) await installNpm(rootfs, work);
  // What Docker's debian images leave out: downloaded lists and packages (a RUN runs apt-get update).
  for (const d of ['var/lib/apt/lists', 'var/cache/apt/archives']) {
    const dir = join(rootfs, d);
    for (const n of fs.readdirSync(dir)) if (n !== 'partial' && n !== 'lock') fs.rmSync(join(dir, n), { recursive: true, force: true });
  }
  for (const f of ['var/cache/apt/pkgcache.bin', 'var/cache/apt/srcpkgcache.bin']) fs.rmSync(join(rootfs, f), { force: true });
}

/** The rootfs as a one-layer OCI image in a new layout at `dir`. */
async function writeImage(spec: DebianBaseSpec, rootfs: string, storeDir: string, dir: string): Promise<void> {
  const store = new BlobStore(storeDir);
  // The tree as layer entries; /proc, /sys, /dev and the files a runtime binds stay out (mount targets).
  const { entries } = await captureOverlayUpper({ upper: rootfs, exclude: ['/proc', '/sys', '/dev', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf'] });
  const layer = await writeLayer(entries, { store });
  const created = '2026-01-01T00:00:00Z';
  const config: ImageConfig = {
    architecture: arch() === 'x64' ? 'amd64' : arch() === 'arm64' ? 'arm64' : arch(),
    os: 'linux',
    created,
    config: { Env: [`PATH=${DEBIAN_PATH}`], Cmd: ['bash'] },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, created_by: `debootstrap --variant=minbase${spec.include.length ? ` --include=${spec.include.join(',')}` : ''} ${DEBIAN_SUITE}${spec.npm ? ` + npm ${NPM_TARBALL.version}` : ''} (ocistack tests)` }],
  };
  const cfg = await store.putBytes(Buffer.from(JSON.stringify(config)));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
  };
  const m = await store.putBytes(Buffer.from(JSON.stringify(manifest)));
  await writeOciLayout({ dir, store, manifests: [{ descriptor: { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size }, tag: 'latest' }] });
}

const made = new Map<string, Promise<DebianImage>>();

/**
 * The Debian base `spec` as an OCI layout in the machine-level cache:
 * made with debootstrap when missing (needs root), else reused.
 */
export function debianBase(spec: DebianBaseSpec): Promise<DebianImage> {
  let p = made.get(spec.name);
  if (!p) {
    p = (async () => {
      const t0 = Date.now();
      const mirror = debianMirror(DEBIAN_SUITE);
      const root = imageCacheRoot();
      const final = join(root, `debian-${DEBIAN_SUITE}-${spec.name}-${cacheKey(spec, mirror)}`);
      if (isLayout(final)) return { layout: final, tag: 'latest', cached: true, ms: Date.now() - t0 };
      fs.mkdirSync(join(root, 'debs'), { recursive: true });
      // One debootstrap at a time on this machine (scripts/test.sh's early run and a test file,
      // or two test runs; they share debs/): the others wait, then find the image made.
      // A dead holder's lock is taken over (lib/lock.ts).
      return withLock(join(root, 'debootstrap.lock'), async () => {
        if (isLayout(final)) return { layout: final, tag: 'latest', cached: true, ms: Date.now() - t0 };
        await makeCached(spec, mirror, root, final);
        return { layout: final, tag: 'latest', cached: false, ms: Date.now() - t0 };
      }, { waitMs: 30 * 60_000, pollMs: 1000, what: `the Debian base image ${final}` });
    })();
    p.catch(() => made.delete(spec.name));
    made.set(spec.name, p);
  }
  return p;
}

/** debootstrap, write the image into a temp dir beside `final`, rename it into place. */
async function makeCached(spec: DebianBaseSpec, mirror: string, root: string, final: string): Promise<void> {
  const work = makeTempDir('debian-base');
  try {
    const rootfs = join(work, 'rootfs');
    await makeRootfs(spec, mirror, rootfs, work, join(root, 'debs'));
    const staged = join(root, `.tmp-${spec.name}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await writeImage(spec, rootfs, join(work, 'store'), staged);
      try {
        fs.renameSync(staged, final);
      } catch (e) {
        // Another run finished first (rename onto a non-empty dir fails): use its copy.
        if (!isLayout(final)) throw e;
      }
    } finally {
      fs.rmSync(staged, { recursive: true, force: true });
    }
  } finally {
    removeTempDir(work);
  }
}

/** Push the base `spec` to `reg` as `library/debian:<name>`; returns the reference. */
export async function pushDebianBase(reg: TestRegistry, spec: DebianBaseSpec): Promise<string> {
  const img = await debianBase(spec);
  const ref = `${reg.host}/library/debian:${spec.name}`;
  const r = await run(requireTool('skopeo'), ['copy', '--quiet', ...skopeoArgs(reg, 'dest'), `oci:${img.layout}:${img.tag}`, `docker://${ref}`], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`pushing ${img.layout} to ${ref} failed (code ${r.code}):\n${r.stderr}`);
  return ref;
}
