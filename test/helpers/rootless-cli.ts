/**
 * Running the real `ocistack` bin as the rootless test user
 * (rootless-user.ts): a work dir the user owns (its HOME, cache dir,
 * contexts, outputs), reachable through the test run's root-owned temp
 * dirs, and the CLI spawned with the user's uid/gid and only PATH, HOME and
 * the XDG dirs in its environment, as a user's shell would give it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { BIN, type CliResult } from './cli.js';
import { ensureRootlessUser, rootlessReachableTempDir } from './rootless-user.js';

export interface RootlessWork {
  user: { name: string; uid: number; gid: number };
  /** The user's work dir (0755, owned by the user). */
  dir: string;
  home: string;
  cacheDir: string;
}

/** Give `p` and everything below it to the user (what a user's own files look like). */
export function chownTree(p: string, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) chownTree(join(p, n), uid, gid);
}

/** A fresh work dir for the rootless user (creating the user when missing), with home/ and cache/. */
export function rootlessWork(prefix: string): RootlessWork {
  const user = ensureRootlessUser();
  const dir = rootlessReachableTempDir(prefix);
  const home = join(dir, 'home');
  const cacheDir = join(dir, 'cache');
  fs.mkdirSync(home);
  fs.mkdirSync(cacheDir);
  chownTree(dir, user.uid, user.gid);
  return { user, dir, home, cacheDir };
}

/** Copy a root-owned file or tree into the user's work dir, owned by the user; returns the copy's path. */
export function giveToUser(w: RootlessWork, src: string, name: string): string {
  const dest = join(w.dir, name);
  fs.rmSync(dest, { recursive: true, force: true });
  fs.cpSync(src, dest, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  chownTree(dest, w.user.uid, w.user.gid);
  return dest;
}

/** The user's environment: PATH, HOME, XDG dirs, OCISTACK_CACHE_DIR; nothing of root's. */
export function rootlessEnv(w: RootlessWork): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: w.home,
    XDG_CACHE_HOME: join(w.home, '.cache'),
    XDG_CONFIG_HOME: join(w.home, '.config'),
    XDG_DATA_HOME: join(w.home, '.local', 'share'),
    OCISTACK_CACHE_DIR: w.cacheDir,
    NODE_DISABLE_COLORS: '1',
  };
}

/** Spawn `node bin/ocistack.js ARGS` as the user (stdio piped); the caller collects output. `detached`: in its own process group. */
export function spawnOcistackAsUser(w: RootlessWork, args: string[], opts: { detached?: boolean } = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: w.dir,
    detached: opts.detached ?? false,
    uid: w.user.uid,
    gid: w.user.gid,
    env: rootlessEnv(w),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Run `ocistack ARGS` as the user to completion. */
export function ocistackAsUser(w: RootlessWork, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnOcistackAsUser(w, args);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
