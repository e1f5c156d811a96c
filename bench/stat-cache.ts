/**
 * Stat cache measurement (not a test): a generated context of about 8,500
 * files / 100 MB, every file's digest cold (read and hashed) and then warm
 * (stat only, from the saved stat cache). `node dist/bench/stat-cache.js`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { openContext } from '../lib/context/context.js';
import { openContentDigests, RACY_MARGIN_MS } from '../lib/context/content-digests.js';

const root = mkdtempSync(join(tmpdir(), 'ocistack-statbench-'));
const dir = join(root, 'ctx');
const cache = join(root, 'cache');
const files: string[] = [];
let bytes = 0;
// node_modules-like: 8,490 small files (1-16 KiB) in 850 packages, plus 10 incompressible 2.5 MiB binaries.
for (let p = 0; p < 850; p++) {
  const pkg = `node_modules/pkg${p}/lib`;
  mkdirSync(join(dir, pkg), { recursive: true });
  for (let f = 0; f < 10; f++) {
    const size = 1024 + ((p * 31 + f * 977) % 15360);
    const rel = `${pkg}/f${f}.js`;
    writeFileSync(join(dir, rel), randomBytes(size));
    files.push(rel);
    bytes += size;
  }
}
mkdirSync(join(dir, 'bin'), { recursive: true });
for (let i = 0; i < 10; i++) {
  const rel = `bin/blob${i}`;
  writeFileSync(join(dir, rel), randomBytes(5 << 19));
  files.push(rel);
  bytes += 5 << 19;
}
await delay(RACY_MARGIN_MS + 200); // files older than the racy margin, as in a real dev loop

async function run(): Promise<number> {
  const t0 = performance.now();
  const ctx = await openContext({ dir });
  const d = await openContentDigests({ context: ctx, cacheDir: cache });
  const t1 = performance.now();
  await Promise.all(files.map((f) => d.fileDigest(f)));
  const t2 = performance.now();
  await d.save();
  const t3 = performance.now();
  console.log(`  open+load ${(t1 - t0).toFixed(0)} ms, digests ${(t2 - t1).toFixed(0)} ms, save ${(t3 - t2).toFixed(0)} ms`);
  return t3 - t0;
}
const cold = await run();
const warm = await run();
const warm2 = await run();
console.log(`${files.length} files, ${(bytes / 1e6).toFixed(1)} MB`);
console.log(`first (read + hash every file): ${cold.toFixed(0)} ms`);
console.log(`second (stat only): ${warm.toFixed(0)} ms; third: ${warm2.toFixed(0)} ms`);
rmSync(root, { recursive: true, force: true });
