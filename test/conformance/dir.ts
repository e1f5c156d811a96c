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

/**
 * Whether a kind's missing folder is a failure: under CI (`CI=true`, set by
 * .ci/run and by CI services) every kind must be there, so a vector folder
 * lost from the CI copy cannot turn into a green "not present". Locally a
 * partial copy is allowed and reported.
 */
export function missingKindFails(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = (env.CI ?? '').toLowerCase();
  return ci !== '' && ci !== 'false' && ci !== '0';
}
