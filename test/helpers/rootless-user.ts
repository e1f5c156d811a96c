/**
 * The user the rootless tests run as: `ocistack-rootless`, a system user
 * without a home, with a subordinate id range in /etc/subuid and
 * /etc/subgid (made here, as root, when missing: the test setup creates it,
 * as issue 9 asks). Idempotent; never touches other users' lines.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { makeTempDir } from './tools.js';

export const ROOTLESS_USER = 'ocistack-rootless';
export const ROOTLESS_RANGE = { start: 400000, count: 65536 };

function idOf(flag: '-u' | '-g'): number | undefined {
  try {
    return Number(execFileSync('id', [flag, ROOTLESS_USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    return undefined;
  }
}

export function ensureRootlessUser(): { name: string; uid: number; gid: number } {
  if (idOf('-u') === undefined) {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', ROOTLESS_USER], { stdio: 'inherit' });
  }
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (!text.split('\n').some((l) => l.startsWith(`${ROOTLESS_USER}:`))) {
      fs.appendFileSync(file, `${text === '' || text.endsWith('\n') ? '' : '\n'}${ROOTLESS_USER}:${ROOTLESS_RANGE.start}:${ROOTLESS_RANGE.count}\n`);
    }
  }
  return { name: ROOTLESS_USER, uid: idOf('-u')!, gid: idOf('-g')! };
}

/**
 * A new temp dir the rootless user can reach: mode 755, and every directory
 * above it searchable by others (the test run's temp dirs are root's, often
 * 0700). The caller chowns what the user must write.
 */
export function rootlessReachableTempDir(name: string): string {
  const dir = makeTempDir(name);
  fs.chmodSync(dir, 0o755);
  for (let d = dirname(dir); d !== '/'; d = dirname(d)) {
    const mode = fs.statSync(d).mode;
    if (!(mode & 0o001)) fs.chmodSync(d, (mode & 0o7777) | 0o111);
  }
  return dir;
}
