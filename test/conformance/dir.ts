/**
 * Where the conformance vectors live: `$OCISTACK_CONFORMANCE_DIR`, else
 * `../shared/conformance` relative to the repository root.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file holding package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root (no package.json above ' + fileURLToPath(import.meta.url) + ')');
    dir = up;
  }
}

/** Absolute path of the conformance directory (it may not exist). */
export function conformanceDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.OCISTACK_CONFORMANCE_DIR;
  if (fromEnv) return resolve(fromEnv);
  return resolve(repoRoot(), '..', 'shared', 'conformance');
}
