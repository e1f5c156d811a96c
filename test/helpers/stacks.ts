/**
 * Fixture stacks (fixtures/stacks/) for the stack tests: copied into a fresh
 * temp dir, so a test may edit, pin or break them without touching the repo.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from './cli.js';
import { makeTempDir } from './tools.js';
import { OcistackError } from '../../lib/errors.js';

export const STACKS = join(REPO_ROOT, 'fixtures', 'stacks');

/** A copy of fixtures/stacks/NAME; returns its directory. */
export function copyStack(name: string): string {
  const dir = join(makeTempDir(`stack-${name}`), name);
  cpSync(join(STACKS, name), dir, { recursive: true });
  return dir;
}

/** Write files (path relative to `root` -> text), creating directories. */
export function writeFiles(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
}

/** Await `p`, which must reject with an OcistackError of `code`; returns it. */
export async function rejectsWith(p: Promise<unknown>, code: string): Promise<OcistackError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, OcistackError, `expected an OcistackError, got ${String(e)}`);
    assert.is((e as OcistackError).code, code, (e as Error).message);
    return e as OcistackError;
  }
  assert.unreachable(`expected a ${code} error, but it succeeded`);
  throw new Error('unreachable');
}
