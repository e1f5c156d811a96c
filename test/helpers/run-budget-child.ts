/**
 * Runs N copies of one RUN step at once through the runc executor in this
 * process (root mode as root, the rootless worker as any other user) and
 * reports this process's CPU budget (lib/cpu-budget.ts) while all N step
 * processes are known to run: each step marks itself in a shared cache
 * mount, waits for N marks, prints `met`, then waits for `done`. When N
 * `met` lines have arrived, the budget is read and `done` is written into
 * the cache mount dirs below the cache dir. argv[2] is JSON: runc,
 * storeRoot, layers, diffIds, cacheDir, n. Prints one JSON line:
 * { capacity, atMeet, after, results } or { error }. With `layerMiB`: one
 * step that writes that many MiB instead, and { takes, after, results }:
 * how many budget units this process gave out (the RUN process's and one a
 * compressed layer block).
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from '../../lib/image/store.js';
import { createRuncExecutor } from '../../lib/executor/runc/index.js';
import { cpuBudget } from '../../lib/cpu-budget.js';
import { BUSYBOX_PATH } from './images.js';

const job = JSON.parse(process.argv[2]!) as { runc: string; storeRoot: string; layers: never[]; diffIds: never[]; cacheDir: string; n: number; layerMiB?: number };
const n = job.n;
// Every unit taken from this process's budget, counted (force and acquire alike).
let takes = 0;
const force = cpuBudget.force.bind(cpuBudget);
const acquire = cpuBudget.acquire.bind(cpuBudget);
cpuBudget.force = () => (takes++, force());
cpuBudget.acquire = (signal?: AbortSignal) => acquire(signal).then(() => void takes++);
if (job.layerMiB) {
  // One step that writes a file of layerMiB MiB: its layer is compressed in 1 MiB blocks, each taking a unit.
  try {
    const r = await createRuncExecutor({ runc: job.runc }).run({
      chain: { store: new BlobStore(job.storeRoot), layers: job.layers, diffIds: job.diffIds },
      process: { args: ['/bin/sh', '-c', `head -c ${job.layerMiB * 1048576} /dev/urandom > /big`], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: '' },
      mounts: [], network: 'none', security: 'sandbox', location: { file: 'Dockerfile', line: 3 }, stepId: '#1', cacheDir: job.cacheDir,
    });
    console.log(JSON.stringify({ takes, after: cpuBudget.inUse, results: [{ exitCode: r.exitCode, layerSize: r.layer?.size }] }));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e) }));
  }
  process.exit(0);
}
const script =
  `id=$(cat /proc/sys/kernel/random/uuid); touch /c/m-$id; i=0; ` +
  `while [ $(ls /c | grep -c '^m-') -lt ${n} ]; do i=$((i+1)); [ $i -gt 2400 ] && exit 7; sleep 0.05; done; echo met; ` +
  `i=0; while [ ! -e /c/done ]; do i=$((i+1)); [ $i -gt 2400 ] && exit 8; sleep 0.05; done`;
let met = 0;
let atMeet: number | undefined;
const executor = createRuncExecutor({ runc: job.runc });
try {
  const results = await Promise.all(
    Array.from({ length: n }, () =>
      executor.run({
        chain: { store: new BlobStore(job.storeRoot), layers: job.layers, diffIds: job.diffIds },
        process: { args: ['/bin/sh', '-c', script], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: '' },
        mounts: [{ type: 'cache', target: '/c', id: 'budget-rendezvous', readonly: false, sharing: 'shared' }],
        network: 'none',
        security: 'sandbox',
        location: { file: 'Dockerfile', line: 3 },
        stepId: '#1',
        cacheDir: job.cacheDir,
        onOutput: (_s, c) => {
          if (!c.toString().includes('met')) return;
          if (++met < n) return;
          // Every step process printed `met` and now waits for `done`: all n run now.
          atMeet = cpuBudget.inUse;
          const mounts = join(job.cacheDir, 'cache-mounts');
          for (const d of readdirSync(mounts).filter((x) => /^[0-9a-f]{64}$/.test(x))) writeFileSync(join(mounts, d, 'done'), '');
        },
      }),
    ),
  );
  console.log(JSON.stringify({ capacity: cpuBudget.capacity, atMeet, after: cpuBudget.inUse, results }));
} catch (e) {
  console.log(JSON.stringify({ error: String(e), atMeet }));
}
