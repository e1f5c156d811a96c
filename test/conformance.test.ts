/**
 * Registers every conformance vector (see test/conformance/) as a uvu test,
 * so the main suite runs them too. Kinds whose folder is missing are listed
 * as not present and register nothing, except under CI=true where each is a
 * failing test; a missing conformance directory is always a failure.
 */
import { test } from './helpers/suite.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { conformanceDir, missingKindFails } from './conformance/dir.js';
import { allKinds } from './conformance/kinds/index.js';

const dir = conformanceDir();

test('conformance directory exists', () => {
  if (!existsSync(dir)) throw new Error(`${dir} does not exist; set OCISTACK_CONFORMANCE_DIR`);
});

if (existsSync(dir)) {
  for (const kind of await allKinds()) {
    const path = join(dir, kind.folder);
    if (!existsSync(path)) {
      if (missingKindFails()) {
        test(`${kind.name}: vector folder present`, () => {
          throw new Error(`${path} does not exist (CI=true: every conformance kind must be present)`);
        });
      } else {
        console.log(`conformance ${kind.name}: not present (${kind.folder})`);
      }
      continue;
    }
    let vectors;
    try {
      vectors = kind.load(path);
    } catch (e) {
      const message = (e as Error).message;
      test(`${kind.name}: load vectors`, () => {
        throw new Error(message);
      });
      continue;
    }
    for (const v of vectors) test(`${kind.name} ${v.id}`, () => v.run());
  }
}

test.run();
