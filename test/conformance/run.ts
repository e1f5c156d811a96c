/**
 * Runs the conformance vectors: `node dist/test/conformance/run.js`
 * (`npm run test:conformance`). Prints `kind: N/M passed` per kind (or
 * `not present`, a failure under CI=true), the failures, and a last line
 * `N passed, N failed`; exits 1 on any failure or when the conformance
 * directory does not exist.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { conformanceDir, missingKindFails } from './dir.js';
import { allKinds } from './kinds/index.js';

async function main(): Promise<number> {
  const dir = conformanceDir();
  console.log(`conformance vectors: ${dir}`);
  if (!existsSync(dir)) {
    console.log(`error: ${dir} does not exist; set OCISTACK_CONFORMANCE_DIR to the conformance folder`);
    console.log('0 passed, 0 failed');
    return 1;
  }
  let passed = 0;
  let failed = 0;
  const failures: string[] = [];
  for (const kind of await allKinds()) {
    const path = join(dir, kind.folder);
    if (!existsSync(path)) {
      if (missingKindFails()) {
        failed++;
        failures.push(`${kind.name}: ${path} does not exist (CI=true: every conformance kind must be present)`);
      }
      console.log(`${kind.name}: not present (${kind.folder})`);
      continue;
    }
    let vectors;
    try {
      vectors = kind.load(path);
    } catch (e) {
      failed++;
      failures.push(`${kind.name}: cannot load ${kind.folder}: ${(e as Error).message}`);
      console.log(`${kind.name}: could not load vectors`);
      continue;
    }
    let ok = 0;
    for (const v of vectors) {
      try {
        v.run();
        ok++;
      } catch (e) {
        failures.push(`${kind.name} ${v.id}: ${(e as Error).message}`);
      }
    }
    passed += ok;
    failed += vectors.length - ok;
    console.log(`${kind.name}: ${ok}/${vectors.length} passed`);
  }
  for (const f of failures) console.log(`FAILED ${f}`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
