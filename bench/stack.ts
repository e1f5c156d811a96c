/**
 * Stack batch benchmark (not a test): `pushStack` of N images to a local TLS
 * registry at several concurrencies, interleaved, fresh cache every run.
 * Prints the median wall time per concurrency, to choose the default
 * (docs/stacks.md#concurrency).
 *
 *   npm run build && node dist/bench/stack.js [--images 4] [--runs 3] [--concurrency 1,2,4]
 *
 * Each image: FROM the test busybox (the same base for all), COPY of 300
 * small files, one RUN that writes 2 MiB. The registry and base come from
 * the test helpers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { busyboxBase } from '../test/helpers/images.js';
import { startRegistry } from '../test/helpers/registry.js';
import { makeTempDir, requireTool } from '../test/helpers/tools.js';
import { testAccess } from '../test/helpers/stack-model.js';
import { pushStack } from '../lib/stack/batch.js';
import type { StackModel } from '../lib/stack/types.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const images = Number(arg('images', '4'));
const runs = Number(arg('runs', '3'));
const levels = arg('concurrency', '1,2,4').split(',').map(Number);

requireTool('runc');
const reg = await startRegistry({ auth: 'none' });
try {
  const base = await busyboxBase(reg);
  const root = makeTempDir('bench-stack');
  const model: StackModel = { root, apps: [], images: [], unmatched: [], warnings: [] };
  for (let i = 0; i < images; i++) {
    const name = `bench-${i}`;
    const dir = join(root, name);
    mkdirSync(join(dir, 'files'), { recursive: true });
    for (let f = 0; f < 300; f++) writeFileSync(join(dir, 'files', `f${f}.txt`), `${name} file ${f}\n`.repeat(20));
    writeFileSync(join(dir, 'Dockerfile'), `ARG BASE\nFROM \${BASE}\nCOPY files /app/files\nRUN dd if=/dev/urandom of=/app/blob bs=1024 count=2048 2>/dev/null\n`);
    model.images.push({ name, context: dir, dockerfile: join(dir, 'Dockerfile'), buildArgs: {}, tags: ['latest'], origin: { kind: 'discovered' }, usedBy: [] });
  }
  const times = new Map<number, number[]>(levels.map((c) => [c, []]));
  for (let r = 0; r < runs; r++) {
    for (const c of levels) {
      const cacheDir = makeTempDir('bench-stack-cache');
      const t0 = performance.now();
      const res = await pushStack({ dir: root, model, access: testAccess(reg), buildArgs: { BASE: base }, cacheDir, concurrency: c });
      if (!res.ok) throw new Error(res.images.map((i) => i.error?.message).join('\n'));
      times.get(c)!.push(performance.now() - t0);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`${images} images, ${runs} runs, ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const c of levels) console.log(`concurrency ${c}: median ${(median(times.get(c)!) / 1000).toFixed(2)} s (${times.get(c)!.map((t) => (t / 1000).toFixed(2)).join(', ')})`);
} finally {
  await reg.stop();
}
