/**
 * `node dist/test/helpers/prepare-debian-bases.js`: make (or find in the
 * machine-level cache) the Debian base images of run-realistic.test.ts
 * before the test files run, so a cold debootstrap is not counted against
 * one test file's time limit. scripts/test.sh runs it after compiling;
 * prints one line per image with how long it took.
 */
import { debianBase, MINBASE, NODE_BASE } from './debian-base.js';

for (const spec of [MINBASE, NODE_BASE]) {
  try {
    const img = await debianBase(spec);
    console.log(`debian base ${spec.name}: ${img.cached ? 'cached' : 'made with debootstrap'} in ${(img.ms / 1000).toFixed(1)} s (${img.layout})`);
  } catch (e) {
    console.error(`debian base ${spec.name}: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
