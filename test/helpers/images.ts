/**
 * Images for integration tests, made and run WITHOUT ocistack so they can
 * check it independently:
 *
 * - {@link busyboxBase}: a busybox image built with umoci from Debian's
 *   busybox-static and pushed with skopeo.
 * - {@link runImage} / {@link runOciLayout}: pull with skopeo, unpack with
 *   umoci, run with runc, return stdout/stderr/exit code.
 * - {@link inspectImage}: manifest and config via skopeo.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestRegistry } from './registry.js';
import { skopeoArgs, skopeoInspectArgs } from './registry.js';
import { makeTempDir, removeTempDir, requireTool, run, runOk, type RunResult } from './tools.js';

/** PATH of the busybox base image (what Debian/Alpine images use). */
export const BUSYBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The user the busybox base image defines besides root. */
export const APP_USER = { name: 'app', uid: 1000, gid: 1000, home: '/home/app' } as const;

let layoutPromise: Promise<{ dir: string; tag: string }> | undefined;

/**
 * Build (once per process) an OCI layout holding a busybox image:
 * /bin/busybox with a symlink per applet in /bin, /etc/passwd and /etc/group
 * with root and app (1000:1000), /tmp (1777), /root, /home/app;
 * config Cmd ["sh"], Env PATH=..., linux/amd64 (the host's).
 */
export function busyboxLayout(): Promise<{ dir: string; tag: string }> {
  layoutPromise ??= (async () => {
    const umoci = requireTool('umoci');
    const busybox = requireTool('busybox');
    const work = makeTempDir('busybox');
    const dir = join(work, 'layout');
    const tag = 'latest';
    const bundle = join(work, 'bundle');
    await runOk(umoci, ['init', '--layout', dir]);
    await runOk(umoci, ['new', '--image', `${dir}:${tag}`]);
    await runOk(umoci, ['unpack', '--image', `${dir}:${tag}`, bundle]);
    const root = join(bundle, 'rootfs');
    for (const d of ['bin', 'etc', 'root', 'tmp', 'home', 'usr/bin', 'usr/sbin', 'sbin', 'var']) mkdirSync(join(root, d), { recursive: true });
    // The static binary from busybox-static (resolve /bin -> /usr/bin symlinks first).
    const realBusybox = (await runOk('readlink', ['-f', busybox])).trim();
    copyFileSync(realBusybox, join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    const applets = (await runOk(realBusybox, ['--list'])).split('\n').map((s) => s.trim()).filter((s) => s && s !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
    writeFileSync(
      join(root, 'etc', 'passwd'),
      `root:x:0:0:root:/root:/bin/sh\n${APP_USER.name}:x:${APP_USER.uid}:${APP_USER.gid}:${APP_USER.name}:${APP_USER.home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n`,
    );
    writeFileSync(join(root, 'etc', 'group'), `root:x:0:\n${APP_USER.name}:x:${APP_USER.gid}:\nnogroup:x:65534:\n`);
    chmodSync(join(root, 'tmp'), 0o1777);
    chmodSync(join(root, 'root'), 0o700);
    mkdirSync(join(root, APP_USER.home.slice(1)), { recursive: true });
    chownSync(join(root, APP_USER.home.slice(1)), APP_USER.uid, APP_USER.gid);
    await runOk(umoci, ['repack', '--image', `${dir}:${tag}`, bundle]);
    await runOk(umoci, [
      'config', '--image', `${dir}:${tag}`,
      '--config.cmd', 'sh',
      '--config.env', `PATH=${BUSYBOX_PATH}`,
      '--config.workingdir', '/',
      '--author', 'ocistack tests',
    ]);
    await runOk(umoci, ['gc', '--layout', dir]);
    removeTempDir(bundle);
    return { dir, tag };
  })();
  layoutPromise.catch(() => (layoutPromise = undefined));
  return layoutPromise;
}

const pushed = new Map<string, Promise<string>>();

export interface BusyboxBaseOptions {
  /** Manifest format to push: OCI (default, what umoci writes) or Docker schema 2 (`skopeo --format v2s2`). */
  format?: 'oci' | 'v2s2';
}

/**
 * Push the busybox base image to `reg` as `repo:tag` (once per process per
 * registry/repo/tag) and return its full reference `localhost:PORT/repo:tag`.
 */
export function busyboxBase(reg: TestRegistry, repo = 'library/busybox', tag = 'latest', opts: BusyboxBaseOptions = {}): Promise<string> {
  const ref = `${reg.host}/${repo}:${tag}`;
  const key = `${ref} ${opts.format ?? 'oci'}`;
  let p = pushed.get(key);
  if (!p) {
    p = (async () => {
      const skopeo = requireTool('skopeo');
      const layout = await busyboxLayout();
      const format = opts.format === 'v2s2' ? ['--format', 'v2s2'] : [];
      const r = await run(skopeo, ['copy', '--quiet', ...format, ...skopeoArgs(reg, 'dest'), `oci:${layout.dir}:${layout.tag}`, `docker://${ref}`]);
      if (r.code !== 0) throw new Error(`pushing busybox base to ${ref} failed (code ${r.code}):\n${r.stderr}\n${reg.logs()}`);
      return ref;
    })();
    p.catch(() => pushed.delete(key));
    pushed.set(key, p);
  }
  return p;
}

export interface RunImageOptions {
  /** Replace the image's entrypoint+cmd (process.args). */
  args?: string[];
  /** Extra `KEY=value` entries appended to the environment. */
  env?: string[];
  /** Override the user (`uid` or `uid:gid`, numeric). */
  user?: string;
  /** Override the working directory. */
  cwd?: string;
  /** Kill the container after this many ms (default 60 000). */
  timeoutMs?: number;
}

export interface RunImageResult extends RunResult {
  /** The OCI runtime spec process umoci derived from the image config (before overrides). */
  process: { args?: string[]; env?: string[]; cwd?: string; user?: { uid: number; gid: number; additionalGids?: number[] } };
}

/** Pull `ref` from `registry` with skopeo and run it with runc (see {@link runOciLayout}). */
export async function runImage(ref: string, opts: RunImageOptions & { registry: TestRegistry }): Promise<RunImageResult> {
  const skopeo = requireTool('skopeo');
  const work = makeTempDir('pull');
  try {
    const layout = join(work, 'layout');
    const r = await run(skopeo, ['copy', '--quiet', ...skopeoArgs(opts.registry, 'src'), `docker://${ref}`, `oci:${layout}:img`]);
    if (r.code !== 0) throw new Error(`skopeo could not pull ${ref} (code ${r.code}):\n${r.stderr}`);
    return await runOciLayout(layout, 'img', opts);
  } finally {
    removeTempDir(work);
  }
}

/**
 * Run the image `tag` of the OCI layout `dir` with runc: the image is first
 * copied with skopeo into a private layout (so the caller's layout is only
 * read, and any `ref.name` works), unpacked with umoci, then run as a
 * non-terminal container. `tag` may be omitted when the index holds one image.
 */
export async function runOciLayout(dir: string, tag: string | undefined, opts: RunImageOptions = {}): Promise<RunImageResult> {
  const skopeo = requireTool('skopeo');
  const umoci = requireTool('umoci');
  const runc = requireTool('runc');
  const work = makeTempDir('run');
  // scripts/test.sh deletes leftover containers named after its run id.
  const id = `ocistack-test-${process.env.OCISTACK_TEST_RUN_ID ?? process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const layout = join(work, 'layout');
    const src = tag === undefined ? `oci:${dir}` : `oci:${dir}:${tag}`;
    const c = await run(skopeo, ['copy', '--quiet', src, `oci:${layout}:img`]);
    if (c.code !== 0) throw new Error(`skopeo could not read ${src} (code ${c.code}):\n${c.stderr}`);
    const bundle = join(work, 'bundle');
    await runOk(umoci, ['unpack', '--image', `${layout}:img`, bundle]);
    const specFile = join(bundle, 'config.json');
    const spec = JSON.parse(readFileSync(specFile, 'utf8'));
    const original = JSON.parse(JSON.stringify(spec.process ?? {}));
    spec.process.terminal = false;
    // The default rlimits may exceed what a CI container allows.
    delete spec.process.rlimits;
    if (opts.args) spec.process.args = opts.args;
    if (opts.env) spec.process.env = [...(spec.process.env ?? []), ...opts.env];
    if (opts.cwd) spec.process.cwd = opts.cwd;
    if (opts.user) {
      const [uid, gid] = opts.user.split(':').map((n) => Number.parseInt(n, 10));
      spec.process.user = { uid, gid: Number.isNaN(gid ?? NaN) ? uid : gid };
    }
    writeFileSync(specFile, JSON.stringify(spec));
    const r = await run(runc, ['run', '--bundle', bundle, id], { timeoutMs: opts.timeoutMs ?? 60_000 });
    return { ...r, process: original };
  } finally {
    await run(runc, ['delete', '-f', id]).catch(() => undefined);
    removeTempDir(work);
  }
}

export interface InspectedImage {
  /** Raw manifest (or index) JSON exactly as served. */
  rawManifest: string;
  manifest: any;
  /** sha256 digest of the raw manifest bytes. */
  digest: string;
  /** The image config (for an index: the linux/amd64 image's, as skopeo picks it). */
  config: any;
}

/** Manifest and config of image `tag` (or the only image) in OCI layout `dir`, read with skopeo. */
export async function inspectOciLayout(dir: string, tag?: string): Promise<InspectedImage> {
  const skopeo = requireTool('skopeo');
  const src = tag === undefined ? `oci:${dir}` : `oci:${dir}:${tag}`;
  const m = await run(skopeo, ['inspect', '--raw', src]);
  if (m.code !== 0) throw new Error(`skopeo inspect --raw ${src} failed (code ${m.code}):\n${m.stderr}`);
  const c = await run(skopeo, ['inspect', '--config', '--raw', src]);
  if (c.code !== 0) throw new Error(`skopeo inspect --config ${src} failed (code ${c.code}):\n${c.stderr}`);
  return {
    rawManifest: m.stdout,
    manifest: JSON.parse(m.stdout),
    digest: `sha256:${createHash('sha256').update(m.stdout, 'utf8').digest('hex')}`,
    config: JSON.parse(c.stdout),
  };
}

/** Manifest and config of `ref` via `skopeo inspect --raw` and `skopeo inspect --config --raw`. */
export async function inspectImage(ref: string, registry: TestRegistry): Promise<InspectedImage> {
  const skopeo = requireTool('skopeo');
  const args = skopeoInspectArgs(registry);
  const m = await run(skopeo, ['inspect', '--raw', ...args, `docker://${ref}`]);
  if (m.code !== 0) throw new Error(`skopeo inspect --raw ${ref} failed (code ${m.code}):\n${m.stderr}`);
  const c = await run(skopeo, ['inspect', '--config', '--raw', ...args, `docker://${ref}`]);
  if (c.code !== 0) throw new Error(`skopeo inspect --config ${ref} failed (code ${c.code}):\n${c.stderr}`);
  return {
    rawManifest: m.stdout,
    manifest: JSON.parse(m.stdout),
    digest: `sha256:${createHash('sha256').update(m.stdout, 'utf8').digest('hex')}`,
    config: JSON.parse(c.stdout),
  };
}

export interface BuildahBuildOptions {
  /** Dockerfile path (default `<context>/Dockerfile`). */
  dockerfile?: string;
  /** `--build-arg KEY=VALUE` entries. */
  buildArgs?: Record<string, string>;
  /** Target stage (`--target`). */
  target?: string;
  /** Registry the Dockerfile's FROM images come from: its CA is trusted and its credentials used. */
  registry?: TestRegistry;
  /** Image name inside the layout (`org.opencontainers.image.ref.name`). Default `buildah:latest`. */
  tag?: string;
  /** Write the OCI layout here (default: a fresh temp dir). */
  layoutDir?: string;
  /** Kill buildah after this many ms (default 300 000). */
  timeoutMs?: number;
  /** One layer per instruction like Docker (`--layers`, default true); false squashes the build's changes into one layer, buildah's own default. */
  layers?: boolean;
}

/**
 * Build `context` with Buildah (the reference implementation ocistack is
 * compared against) into an OCI layout. Each call uses its own throwaway
 * storage (vfs driver, chroot isolation), so calls do not share caches.
 * Returns the layout dir and the tag to read it with (`oci:<dir>:<tag>`).
 */
export async function buildahBuild(context: string, opts: BuildahBuildOptions = {}): Promise<{ layoutDir: string; tag: string; output: string }> {
  const buildah = requireTool('buildah');
  const store = makeTempDir('buildah');
  const tag = opts.tag ?? 'buildah:latest';
  const layoutDir = opts.layoutDir ?? join(makeTempDir('buildah-out'), 'layout');
  const global = ['--root', join(store, 'root'), '--runroot', join(store, 'runroot'), '--storage-driver', 'vfs'];
  const name = `localhost/ocistack-buildah-${randomBytes(4).toString('hex')}:latest`;
  const args = [...global, 'bud', '--isolation', 'chroot', `--layers=${opts.layers ?? true}`, '-t', name];
  if (opts.dockerfile) args.push('-f', opts.dockerfile);
  if (opts.target) args.push('--target', opts.target);
  for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
  if (opts.registry) {
    if (opts.registry.tls) args.push('--cert-dir', opts.registry.certDir);
    else args.push('--tls-verify=false');
    if (opts.registry.username && opts.registry.password) args.push('--creds', `${opts.registry.username}:${opts.registry.password}`);
  }
  args.push(context);
  try {
    const b = await run(buildah, args, { timeoutMs: opts.timeoutMs ?? 300_000 });
    if (b.code !== 0) throw new Error(`buildah bud ${context} failed (code ${b.code}):\n${b.stderr}\n${b.stdout}`);
    const p = await run(buildah, [...global, 'push', name, `oci:${layoutDir}:${tag}`], { timeoutMs: opts.timeoutMs ?? 300_000 });
    if (p.code !== 0) throw new Error(`buildah push to oci:${layoutDir}:${tag} failed (code ${p.code}):\n${p.stderr}`);
    return { layoutDir, tag, output: b.stdout + b.stderr };
  } finally {
    // vfs storage is plain files owned by root; remove it now, it can be large.
    removeTempDir(store);
  }
}
