/**
 * `RUN --mount` for the runc executor: turns the step's RunMounts into OCI
 * mounts of its config.json, plus the mount targets the stub lower dir
 * (stubs.ts) must provide so that a target the image lacks is never created
 * in the upper dir, i.e. never reaches the change layer.
 *
 * - `type=tmpfs`: a tmpfs.
 * - `type=secret`: a file outside the rootfs, in the 0700 step dir, bound
 *   read-only at the target; or, with `env=`, a variable of this step's
 *   process only.
 * - `type=cache`: a directory `<cacheDir>/cache-mounts/<sha256 of key>`
 *   kept across steps and builds, bound read-write. The key is the id
 *   (default: the target, as BuildKit); with `from=` also the source chain
 *   and path (BuildKit keys a cache by id and base ref too), and a new dir
 *   starts as a copy of that path (BuildKit makes it on top of the whole
 *   `from` ref and mounts `source=` of it: the step sees the same).
 *   Without `from=`, `source=` is a subdirectory of the cache dir.
 *   `sharing=locked` holds a lib/lock.ts lock on it for the step,
 *   `private` uses it when no other step holds it and otherwise a
 *   throw-away dir in the step dir.
 * - `type=bind`: the source (mount-source.ts) bound read-only; with `rw`,
 *   writes go to a throw-away place: the context copy is the step's own
 *   already, a directory of a snapshot gets an overlay with an upper dir in
 *   the step dir, a single file is copied.
 * - `type=ssh`: a socket of the step forwarding to the build's agent
 *   (ssh-proxy.ts).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError } from '../../errors.js';
import { acquireLock, type HeldLock } from '../../lock.js';
import { chainId } from '../../rootfs/index.js';
import { resolveInRootSync } from '../../scoped-path.js';
import type { RunMount, RunRequest } from '../types.js';
import { chainSourcePath, copyContextEntries, copyTree, type MaterialisedSource } from './mount-source.js';
import { mountOverlay, unmountOverlay } from './overlay.js';
import type { OciMount } from './spec.js';
import { MOUNT_TARGET_DIRS, MOUNT_TARGET_FILES } from './spec.js';
import { startSshProxy } from './ssh-proxy.js';

/** Mount types this executor implements. */
export const SUPPORTED_MOUNT_TYPES: readonly RunMount['type'][] = ['tmpfs', 'secret', 'cache', 'bind', 'ssh'];

export interface StepMounts {
  /** Appended to the spec's mounts, in Dockerfile order. */
  oci: OciMount[];
  /** Image paths (absolute) that must exist as directories / files: stubbed when the image lacks them. */
  stubDirs: string[];
  stubFiles: string[];
  /** `K=V` added to the process's env (secret mounts with `env=`). */
  env: string[];
  /** Cache mount locks held for the step: release them when it ends (releaseStepMounts). */
  locks: HeldLock[];
  /** Bind overlays to unmount, ssh proxies to close, when the step ends (releaseStepMounts), last first. */
  cleanups: (() => Promise<void>)[];
}

/** How long a `sharing=locked` cache mount waits for the step holding it (an abort ends the wait sooner). */
const LOCKED_WAIT_MS = 60 * 60 * 1000;

/** The directory of cache mount `id` (default: its target, as BuildKit) below the cache dir. */
export function cacheMountDir(cacheDir: string, id: string): string {
  return path.join(path.resolve(cacheDir), 'cache-mounts', createHash('sha256').update(id).digest('hex'));
}

export async function releaseStepMounts(m: StepMounts): Promise<void> {
  for (const c of m.cleanups.splice(0).reverse()) await c().catch(() => undefined);
  for (const l of m.locks.splice(0)) await l.release().catch(() => undefined);
}

/** The key of a cache mount's dir: its id, plus where it was seeded from (`from=`). */
function cacheKey(m: RunMount, target: string): string {
  const id = m.id || target;
  if (m.source?.kind !== 'chain') return id;
  const c = m.source.chain;
  return `${id}\0from=${c.diffIds.length ? chainId(c.diffIds) : 'scratch'}:${m.source.path}`;
}

/** The `from=` source of a cache mount, as a host directory to copy from. */
async function cacheSeed(req: RunRequest, m: RunMount): Promise<MaterialisedSource | undefined> {
  if (!m.source) return undefined;
  if (m.source.kind !== 'chain') throw mountError(req, 'RUN --mount=type=cache,from= takes a stage or an image', 'name a stage or image in from=');
  const seed = await chainSourcePath(req, m.source);
  if (!seed.isDir) throw mountError(req, `RUN --mount=type=cache,from=...,source=${m.source.path}: not a directory`, 'a cache mount is a directory: name one in source=');
  return seed;
}

/** The cache dir's `source=` subdirectory (no `from=`), resolved inside it and made when missing. */
function cacheSubdir(req: RunRequest, dir: string, sub: string): string {
  const rel = resolveInRootSync(sub, true, (r) => {
    const p = path.join(dir, r);
    return fs.lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() ? fs.readlinkSync(p) : undefined;
  }, `${sub} in the cache mount`);
  let p = dir;
  for (const seg of rel.split('/').filter(Boolean)) {
    p = path.join(p, seg);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) fs.mkdirSync(p, { mode: 0o755 });
    else if (!st.isDirectory()) throw mountError(req, `RUN --mount=type=cache,source=${sub}: ${rel} in the cache is not a directory`, 'remove it from the cache, or choose another source=');
  }
  return p;
}

/** A cache mount's host directory, made with its mode/uid/gid the first time; takes its lock as `sharing` says. */
async function cacheSource(req: RunRequest, m: RunMount, target: string, stepDir: string, out: StepMounts, n: number): Promise<string> {
  const dir = cacheMountDir(req.cacheDir, cacheKey(m, target));
  const lockFile = `${dir}.lock`;
  const sharing = m.sharing ?? 'shared';
  const what = `the cache mount ${m.id || target}`;
  if (sharing === 'locked') {
    out.locks.push(await acquireLock(lockFile, { waitMs: LOCKED_WAIT_MS, signal: req.signal, what }));
  } else if (sharing === 'private') {
    try {
      out.locks.push(await acquireLock(lockFile, { waitMs: 0, signal: req.signal, what }));
    } catch (e) {
      if ((e as OcistackError).code !== 'CACHE_LOCKED') throw e;
      // In use by another step: this one gets an empty dir of its own, discarded with the step dir.
      const own = path.join(stepDir, 'private-cache', String(n));
      fs.mkdirSync(own, { recursive: true });
      await initCacheDir(req, own, m);
      return own;
    }
  }
  if (!fs.existsSync(dir)) {
    // Made whole under a temp name, then renamed: a concurrent step never sees it without its owner and mode.
    fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
    const tmp = `${dir}.new-${process.pid}-${n}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    try {
      await initCacheDir(req, tmp, m);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (!fs.existsSync(dir)) throw e; // another step made it first: use theirs
    }
  }
  return dir;
}

/** A new cache dir: the `from=` copy (keeping its owner and mode unless uid/gid/mode are given), else empty with uid/gid/mode. */
async function initCacheDir(req: RunRequest, dir: string, m: RunMount): Promise<void> {
  const seed = await cacheSeed(req, m);
  if (seed) {
    await copyTree(seed.path, dir, true, req);
    const st = fs.statSync(dir);
    fs.chownSync(dir, m.uid ?? st.uid, m.gid ?? st.gid);
    fs.chmodSync(dir, (m.mode ?? st.mode) & 0o7777);
    return;
  }
  fs.chownSync(dir, m.uid ?? 0, m.gid ?? 0);
  fs.chmodSync(dir, (m.mode ?? 0o755) & 0o7777);
}

/** The host path a bind mount shows: read-only as it is, or (rw) a throw-away place whose writes vanish with the step. */
async function bindSource(req: RunRequest, m: RunMount, stepDir: string, out: StepMounts, rootless: boolean): Promise<MaterialisedSource> {
  if (!m.source) throw mountError(req, 'RUN --mount=type=bind has no source', 'this is a bug of the caller of the executor (RunMount.source)');
  const base = path.join(stepDir, 'binds', String(out.oci.length));
  fs.mkdirSync(base, { recursive: true, mode: 0o700 });
  const src = m.source.kind === 'context' ? copyContextEntries(req, m.source, path.join(base, 'tree')) : await chainSourcePath(req, m.source);
  if (m.readonly || src.own) return src;
  if (!src.isDir) {
    const file = path.join(base, 'file');
    await copyTree(src.path, file, false, req);
    return { path: file, isDir: false, own: true };
  }
  const d = { upper: path.join(base, 'upper'), work: path.join(base, 'work'), merged: path.join(base, 'merged') };
  for (const p of Object.values(d)) fs.mkdirSync(p);
  // The merged root shows the upper dir's own metadata: give it the source's.
  const st = fs.statSync(src.path);
  fs.chownSync(d.upper, st.uid, st.gid);
  fs.chmodSync(d.upper, st.mode & 0o7777);
  await mountOverlay({ lower: [src.path], ...d, userxattr: rootless });
  out.cleanups.push(() => unmountOverlay(d.merged));
  return { path: d.merged, isDir: true, own: true };
}

function mountError(req: RunRequest, message: string, hint: string, code = 'RUN_MOUNT'): OcistackError {
  return new OcistackError(message, { code, location: req.location, hint });
}

/** The absolute, normalised target of a mount (a relative one is below the step's WORKDIR, as in BuildKit). */
export function mountTarget(req: RunRequest, m: RunMount): string {
  if (!m.target) throw mountError(req, `RUN --mount=type=${m.type} needs a target`, `add target=/path to the --mount option`);
  const t = path.posix.resolve(req.process.cwd || '/', m.target);
  if (t === '/') throw mountError(req, `RUN --mount=type=${m.type} cannot be mounted at /`, 'choose a target below /, e.g. target=/tmp/x');
  for (const reserved of [...MOUNT_TARGET_DIRS, ...MOUNT_TARGET_FILES]) {
    if (t === reserved || t.startsWith(`${reserved}/`)) {
      throw mountError(req, `RUN --mount target ${t} is below ${reserved}, which the step itself mounts`, 'choose another target');
    }
  }
  return t;
}

/** Throws RUN_MOUNT_UNSUPPORTED for the first mount of a type not implemented yet. */
export function checkMountTypes(req: RunRequest): void {
  const bad = req.mounts.find((m) => !SUPPORTED_MOUNT_TYPES.includes(m.type));
  if (bad) {
    throw new OcistackError(`RUN --mount=type=${bad.type} is not supported by the runc executor yet`, {
      code: 'RUN_MOUNT_UNSUPPORTED',
      location: req.location,
      hint: `remove the --mount=type=${bad.type} option for now (supported: ${SUPPORTED_MOUNT_TYPES.join(', ')})`,
    });
  }
}

function tmpfsMount(target: string, m: RunMount): OciMount {
  const options = ['nosuid', 'nodev', 'mode=1777'];
  if (m.size !== undefined && m.size > 0) options.push(`size=${m.size}`);
  return { destination: target, type: 'tmpfs', source: 'tmpfs', options };
}

/** Env var names a secret may be exposed as (what a shell can read). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The OCI mounts and stub targets of the step's `--mount`s (types checked
 * by checkMountTypes). Secret files are written below `secretDir` (created
 * here, inside the step dir, never inside the rootfs).
 */
export async function stepMounts(req: RunRequest, stepDir: string, rootless = false): Promise<StepMounts> {
  const out: StepMounts = { oci: [], stubDirs: [], stubFiles: [], env: [], locks: [], cleanups: [] };
  try {
    await addMounts(req, stepDir, out, rootless);
  } catch (e) {
    await releaseStepMounts(out);
    throw e;
  }
  return out;
}

async function addMounts(req: RunRequest, stepDir: string, out: StepMounts, rootless: boolean): Promise<void> {
  const secretDir = path.join(stepDir, 'secrets');
  const seen = new Set<string>();
  let secrets = 0;
  for (const m of req.mounts) {
    if (m.type === 'secret') {
      const value = req.secrets?.[m.id ?? ''];
      if (value === undefined) {
        // The engine drops optional secrets it does not have; another caller may not.
        if (!m.required) continue;
        throw mountError(req, `RUN --mount=type=secret: the secret "${m.id ?? ''}" is required but was not given`, `pass it with --secret id=${m.id ?? 'ID'},src=FILE`, 'RUN_SECRET_MISSING');
      }
      if (m.env !== undefined) {
        if (!ENV_NAME.test(m.env)) throw mountError(req, `RUN --mount=type=secret,env=${m.env}: not a variable name`, 'env= takes a name like API_TOKEN');
        if (value.includes(0)) throw mountError(req, `the secret "${m.id ?? ''}" contains a NUL byte and cannot be an environment variable`, 'mount it as a file (target=) instead of env=');
        out.env.push(`${m.env}=${value.toString()}`);
        if (!m.target) continue;
      }
      const target = mountTarget(req, m);
      if (seen.has(target)) throw mountError(req, `two RUN --mount options have the target ${target}`, 'give each mount its own target');
      seen.add(target);
      if (!fs.existsSync(secretDir)) fs.mkdirSync(secretDir, { mode: 0o700 });
      const source = path.join(secretDir, String(secrets++));
      fs.writeFileSync(source, value, { mode: 0o600 });
      fs.chownSync(source, m.uid ?? 0, m.gid ?? 0);
      fs.chmodSync(source, (m.mode ?? 0o400) & 0o7777);
      out.oci.push({ destination: target, type: 'bind', source, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
      out.stubFiles.push(target);
      continue;
    }
    let agent: string | undefined;
    if (m.type === 'ssh') {
      agent = req.ssh?.[m.id ?? 'default'];
      // The engine drops optional agents it does not have; another caller may not.
      if (agent === undefined && !m.required) continue;
      if (agent === undefined || !fs.statSync(agent, { throwIfNoEntry: false })?.isSocket()) {
        const why = agent === undefined ? 'is required but was not given' : `socket ${agent} is not there (is the agent still running?)`;
        throw mountError(req, `RUN --mount=type=ssh: the SSH agent "${m.id ?? 'default'}" ${why}`, `pass a running agent with --ssh ${m.id && m.id !== 'default' ? `${m.id}=SOCKET` : 'default'}`, 'RUN_SSH_MISSING');
      }
    }
    const target = mountTarget(req, m);
    if (seen.has(target)) throw mountError(req, `two RUN --mount options have the target ${target}`, 'give each mount its own target');
    seen.add(target);
    switch (m.type) {
      case 'tmpfs':
        out.oci.push(tmpfsMount(target, m));
        out.stubDirs.push(target);
        break;
      case 'cache': {
        let source = await cacheSource(req, m, target, stepDir, out, out.oci.length);
        if (m.subpath && !m.source) source = cacheSubdir(req, source, m.subpath);
        out.oci.push({ destination: target, type: 'bind', source, options: ['rbind', m.readonly ? 'ro' : 'rw', 'nosuid', 'nodev'] });
        out.stubDirs.push(target);
        break;
      }
      case 'bind': {
        const src = await bindSource(req, m, stepDir, out, rootless);
        out.oci.push({ destination: target, type: 'bind', source: src.path, options: ['rbind', m.readonly ? 'ro' : 'rw', 'nosuid', 'nodev'] });
        (src.isDir ? out.stubDirs : out.stubFiles).push(target);
        break;
      }
      case 'ssh': {
        const proxy = await startSshProxy(agent!, { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o600 });
        out.cleanups.push(proxy.close);
        out.oci.push({ destination: target, type: 'bind', source: proxy.socket, options: ['rbind', 'nosuid', 'nodev', 'noexec'] });
        out.stubFiles.push(target);
        break;
      }
      default:
        checkMountTypes(req);
    }
  }
}
