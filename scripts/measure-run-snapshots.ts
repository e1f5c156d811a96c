/**
 * Measures RUN latency of the runc executor on cached snapshots (issue 9's
 * speed targets); a measurement, not a test (bench/ has the build
 * workloads). Run as root after `npx tsc -p .`:
 *
 *   node dist/scripts/measure-run-snapshots.js [--rootless] [--runs N]
 *
 * 1. trivial: `RUN true` on the busybox chain, once to make the snapshot,
 *    then N times on it: median/min/max ms.
 * 2. ten: ten consecutive `RUN echo N > /fN` on busybox + a 100 MiB layer,
 *    each on the chain the previous one produced: ms per step and total.
 *
 * With --rootless the same steps run as the user `ocistack-rootless`
 * (created with a subordinate id range as the rootless tests do), in a
 * child process of this script.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobStore } from '../lib/image/store.js';
import type { Descriptor, Digest } from '../lib/image/types.js';
import type { LayerChain } from '../lib/executor/types.js';
import { createRuncExecutor } from '../lib/executor/runc/index.js';
import { busyboxChain, runScript } from '../test/helpers/run-steps.js';
import { ensureRootlessUser } from '../test/helpers/rootless-user.js';

const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 15) || 15;

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(0)} ms (min ${s[0]!.toFixed(0)}, max ${s[s.length - 1]!.toFixed(0)}, n=${s.length})`;
}

/** An uncompressed layer of `mib` MiB in 1 MiB files of random bytes. */
async function bigLayer(store: BlobStore, work: string, mib: number): Promise<{ desc: Descriptor; diffId: Digest }> {
  const dir = join(work, 'big');
  fs.mkdirSync(join(dir, 'data'), { recursive: true });
  for (let i = 0; i < mib; i++) fs.writeFileSync(join(dir, 'data', `f${i}`), randomBytes(1 << 20));
  const tar = join(work, 'big.tar');
  const r = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '-C', dir, '-cf', tar, 'data']);
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  const put = await store.putBytes(fs.readFileSync(tar));
  return { desc: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: put.digest, size: put.size }, diffId: put.digest };
}

interface Prepared {
  base: { layers: Descriptor[]; diffIds: Digest[] };
  big: { desc: Descriptor; diffId: Digest };
}

/** As root: the store (also the cache dir) with busybox and the 100 MiB layer. */
async function prepare(work: string): Promise<void> {
  const cacheDir = join(work, 'cache');
  fs.mkdirSync(cacheDir, { recursive: true });
  const base = await busyboxChain(cacheDir);
  const big = await bigLayer(base.store, work, 100);
  fs.writeFileSync(join(work, 'prepared.json'), JSON.stringify({ base: { layers: base.layers, diffIds: base.diffIds }, big }));
}

async function measure(work: string): Promise<void> {
  const executor = createRuncExecutor();
  const cacheDir = join(work, 'cache');
  const prepared = JSON.parse(fs.readFileSync(join(work, 'prepared.json'), 'utf8')) as Prepared;
  const base: LayerChain = { store: new BlobStore(cacheDir), ...prepared.base };
  const t = async (chain: LayerChain, script: string): Promise<{ ms: number; chain: LayerChain }> => {
    const start = performance.now();
    const r = await runScript(executor, { chain, cacheDir }, script);
    const ms = performance.now() - start;
    if (r.exitCode !== 0) throw new Error(`${script}: exit ${r.exitCode}: ${r.stderr}`);
    const next = r.layer ? { ...chain, layers: [...chain.layers, { mediaType: r.layer.mediaType, digest: r.layer.digest, size: r.layer.size }], diffIds: [...chain.diffIds, r.layer.diffId] } : chain;
    return { ms, chain: next };
  };
  const first = await t(base, 'true');
  const trivial: number[] = [];
  for (let i = 0; i < runs; i++) trivial.push((await t(base, 'true')).ms);
  console.log(`trivial RUN true: first (makes the snapshot) ${first.ms.toFixed(0)} ms; cached ${stats(trivial)}`);

  const { big } = prepared;
  let chain: LayerChain = { ...base, layers: [...base.layers, big.desc], diffIds: [...base.diffIds, big.diffId] };
  const steps: number[] = [];
  for (let i = 1; i <= 10; i++) {
    const r = await t(chain, `echo ${i} > /f${i}`);
    steps.push(r.ms);
    chain = r.chain;
  }
  const total = steps.reduce((a, b) => a + b, 0);
  console.log(`ten RUN echo N > /fN on busybox + 100 MiB: total ${total.toFixed(0)} ms; steps ${steps.map((s) => s.toFixed(0)).join(' ')}`);
  console.log(`  first step (extracts the base) ${steps[0]!.toFixed(0)} ms; steps 2-10 ${stats(steps.slice(1))}`);
}

function openUp(p: string): void {
  for (let d = p; d !== '/'; d = dirname(d)) {
    const mode = fs.statSync(d).mode;
    if (!(mode & 0o001)) fs.chmodSync(d, (mode & 0o7777) | 0o111);
  }
}

const work = process.env.MEASURE_WORK ?? mkdtempSync(join(tmpdir(), 'measure-run-'));
if (!process.env.MEASURE_WORK) await prepare(work);
if (args.includes('--rootless') && process.getuid?.() === 0) {
  const user = ensureRootlessUser();
  fs.chmodSync(work, 0o755);
  openUp(work);
  spawnSync('chown', ['-R', `${user.uid}:${user.gid}`, work]);
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], {
    uid: user.uid,
    gid: user.gid,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', MEASURE_WORK: work },
    stdio: 'inherit',
  });
  child.on('close', (code) => {
    fs.rmSync(work, { recursive: true, force: true });
    process.exit(code ?? 1);
  });
} else {
  console.log(`as ${process.getuid?.() === 0 ? 'root' : 'rootless'} (uid ${process.getuid?.()})`);
  try {
    await measure(work);
  } finally {
    if (!process.env.MEASURE_WORK) fs.rmSync(work, { recursive: true, force: true });
  }
}
