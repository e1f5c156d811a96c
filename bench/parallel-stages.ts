/**
 * Parallel stages benchmark (not a test): two independent stages, each
 * `COPY`ing its own ~50 MiB tree (half random bytes, which the gzip writer
 * stores, half repetitive text, which it deflates), and a final stage
 * taking one small file from each. Built with maxParallelStages 1
 * (sequential) and 2 (parallel), and parallel with the CPU budget widened
 * to 64 (`OCISTACK_CPU_BUDGET=64`: what parallel stages would do without
 * the shared budget), each in a fresh child process and a fresh cache dir,
 * interleaved; prints the median wall ms and CPU ms (user + system of the
 * child, thread pool included) of each.
 *
 *   npm run build && node dist/bench/parallel-stages.js [--runs 3] [--mib 50]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};

if (args[0] === '--child') {
  const { build } = await import('../lib/engine/build.js');
  const [ctx, cacheDir, limit] = [args[1]!, args[2]!, Number(args[3])];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await build({ context: ctx, cacheDir, maxParallelStages: limit, sourceDateEpoch: 1700000000, env: {} });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000 }));
  process.exit(0);
}

const runs = Number(opt('runs', '3'));
const mib = Number(opt('mib', '50'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ocistack-bench-par-'));
const ctx = path.join(work, 'ctx');
for (const name of ['a', 'b']) {
  const dir = path.join(ctx, name);
  fs.mkdirSync(dir, { recursive: true });
  // Files of 1 MiB: half random, half a repeating text line with a counter (compresses ~10x, not trivially).
  for (let i = 0; i < mib; i++) {
    const data = i % 2 === 0 ? randomBytes(1 << 20) : Buffer.from(Array.from({ length: 1 << 14 }, (_, k) => `line ${name} ${i} ${k} lorem ipsum dolor\n`).join('').slice(0, 1 << 20));
    fs.writeFileSync(path.join(dir, `f${i}`), data);
  }
}
fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM scratch AS a
COPY a/ /a/
FROM scratch AS b
COPY b/ /b/
FROM scratch
COPY --from=a /a/f0 /a0
COPY --from=b /b/f0 /b0
`);

const self = fileURLToPath(import.meta.url);
const modes = [
  { name: 'sequential (maxParallelStages 1)', limit: 1, env: {} },
  { name: 'parallel (2), shared CPU budget', limit: 2, env: {} },
  { name: 'parallel (2), budget widened to 64', limit: 2, env: { OCISTACK_CPU_BUDGET: '64' } },
];
const results = new Map<string, { wallMs: number; cpuMs: number }[]>();
let n = 0;
for (let r = 0; r < runs + 1; r++) {
  for (const m of modes) {
    const cacheDir = path.join(work, `cache-${n++}`);
    const out = execFileSync(process.execPath, [self, '--child', ctx, cacheDir, String(m.limit)], { env: { ...process.env, ...m.env }, encoding: 'utf8' });
    fs.rmSync(cacheDir, { recursive: true, force: true });
    if (r === 0) continue; // warm-up: page cache, JIT
    const list = results.get(m.name) ?? [];
    list.push(JSON.parse(out) as { wallMs: number; cpuMs: number });
    results.set(m.name, list);
  }
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`two stages x ${mib} MiB (half random, half text), ${runs} runs, ${os.availableParallelism()} cores, node ${process.version}`);
for (const m of modes) {
  const rs = results.get(m.name)!;
  console.log(`${m.name.padEnd(38)} wall ${median(rs.map((x) => x.wallMs)).toFixed(0).padStart(6)} ms   cpu ${median(rs.map((x) => x.cpuMs)).toFixed(0).padStart(6)} ms   (wall: ${rs.map((x) => x.wallMs.toFixed(0)).join(', ')})`);
}
fs.rmSync(work, { recursive: true, force: true });
