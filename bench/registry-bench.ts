/**
 * Registry benchmark (not a test): push and pull of a 100 MB, 5-layer image
 * over loopback TLS, ocistack vs `skopeo copy` of the same image in the same
 * run, each against its own fresh docker-registry. Prints medians and ratios.
 *
 *   npx tsc -p . && node dist/bench/registry-bench.js [--mb 100] [--layers 5] [--rounds 5]
 *
 * Like with like: skopeo is a process started per copy, so ocistack is timed
 * as a process too (`bin/ocistack.js`, start-up and module loading included),
 * wall time from spawn to exit for both. Both read the same OCI layout for
 * push (ocistack's blob cache already holds the blobs, as after `ocistack
 * build`), and both pull into a fresh OCI layout (ocistack with an empty blob
 * cache). The same operation is also timed inside one process (library call,
 * no start-up) to show what start-up costs. Rounds alternate which tool goes
 * first, so a busy machine hurts both alike.
 *
 * NODE_EXTRA_CA_CERTS (some environments set it to the whole system bundle)
 * makes every Node process parse that file before running any code, ~40 ms
 * per start here; Go programs like skopeo pay nothing for it. ocistack
 * processes run without it unless `--keep-env` is given, and the start-up cost
 * with and without it is printed, so both views are visible.
 *
 * With GNU time (/usr/bin/time) present, CPU time (user + system) and peak
 * RSS of every process are reported for both tools. Peak RSS of ocistack is
 * also measured for an image with the same layer count at 1/20 of the size,
 * to show memory does not grow with blob size.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeOciLayout } from '../lib/image/layout.js';
import { BlobStore } from '../lib/image/store.js';
import type { Descriptor } from '../lib/image/types.js';
import { pullImage, pushImage } from '../lib/registry/index.js';
import { makeRandomImage } from '../test/helpers/random-image.js';
import { skopeoArgs, startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { makeTempDir, requireTool } from '../test/helpers/tools.js';

/** One measured process (or in-process call). */
interface Sample {
  ms: number;
  /** User + system CPU, ms (GNU time only). */
  cpuMs?: number;
  /** Peak RSS, MiB (GNU time, or the worker's own report). */
  rssMiB?: number;
}

interface WorkerResult {
  ms: number;
  maxRssMiB: number;
  digest: string;
}

const self = fileURLToPath(import.meta.url);
const cli = fileURLToPath(new URL('../../bin/ocistack.js', import.meta.url));
const gnuTime = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const keepEnv = process.argv.includes('--keep-env');
/** Environment of ocistack processes (see NODE_EXTRA_CA_CERTS above). */
const withoutExtraCerts: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS'));
const nodeEnv: NodeJS.ProcessEnv = keepEnv ? process.env : withoutExtraCerts;

/** Child mode: one push or pull as a library call, report time and peak RSS. */
async function worker(args: string[]): Promise<void> {
  const [op, storeRoot, ref, caFile, descJson] = args as [string, string, string, string, string | undefined];
  const store = new BlobStore(storeRoot);
  const t0 = performance.now();
  let digest: string;
  if (op === 'push') {
    const r = await pushImage({ store, manifest: JSON.parse(descJson!) as Descriptor, tags: [ref], registry: { caFile, env: {} } });
    digest = r.digest;
  } else {
    const r = await pullImage({ ref, store, registry: { caFile, env: {} } });
    digest = r.manifestDigest;
  }
  const ms = performance.now() - t0;
  const out: WorkerResult = { ms, maxRssMiB: process.resourceUsage().maxRSS / 1024, digest };
  process.stdout.write(JSON.stringify(out) + '\n');
}

function runInProcess(args: string[]): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [self, '--worker', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: nodeEnv });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`worker exited ${code}`))));
  });
}

/** Run a command to completion: wall time from spawn to exit, plus CPU and peak RSS when GNU time is there. */
function timeCmd(cmd: string, args: string[], statsFile: string, env: NodeJS.ProcessEnv = process.env): Promise<Sample & { stdout: string }> {
  return new Promise((resolve, reject) => {
    const argv = gnuTime ? [gnuTime, '-o', statsFile, '-f', '%U %S %M', cmd, ...args] : [cmd, ...args];
    const t0 = performance.now();
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env });
    let stdout = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`));
      if (!gnuTime) return resolve({ ms, stdout });
      const [user, sys, rssKiB] = readFileSync(statsFile, 'utf8').trim().split(/\s+/).slice(-3).map(Number) as [number, number, number];
      resolve({ ms, cpuMs: (user + sys) * 1000, rssMiB: rssKiB / 1024, stdout });
    });
  });
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

async function main(): Promise<void> {
  const totalMiB = arg('mb', 100);
  const layers = arg('layers', 5);
  const rounds = arg('rounds', 3);
  const skopeo = requireTool('skopeo');
  const work = makeTempDir('bench');
  const stats = join(work, 'time.txt');
  const srcStore = new BlobStore(join(work, 'src'));
  const img = await makeRandomImage(srcStore, Array.from({ length: layers }, () => Math.floor((totalMiB * 1024 * 1024) / layers)));
  // Same layer count, 1/20 of the bytes: same concurrency, so only blob size differs.
  const small = await makeRandomImage(srcStore, Array.from({ length: layers }, () => Math.floor((totalMiB * 1024 * 1024) / layers / 20)));
  const layout = join(work, 'layout');
  await writeOciLayout({ dir: layout, store: srcStore, manifests: [{ descriptor: img.descriptor, tag: 'big' }, { descriptor: small.descriptor, tag: 'small' }] });
  // Bare Node start-up, with and without NODE_EXTRA_CA_CERTS as the environment has it.
  const startup = async (env: NodeJS.ProcessEnv) => {
    const t: number[] = [];
    for (let i = 0; i < 5; i++) t.push((await timeCmd(process.execPath, ['-e', '0'], stats, env)).ms);
    return med(t);
  };
  const startupLine = process.env.NODE_EXTRA_CA_CERTS
    ? `node start-up (node -e 0): ${(await startup(process.env)).toFixed(0)} ms with NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS}, ${(await startup(withoutExtraCerts)).toFixed(0)} ms without; ocistack runs ${keepEnv ? 'with' : 'without'} it${keepEnv ? '' : ' (--keep-env to keep it)'}`
    : `node start-up (node -e 0): ${(await startup(process.env)).toFixed(0)} ms`;
  const regs: TestRegistry[] = [];
  const s = { pushO: [] as Sample[], pushS: [] as Sample[], pullO: [] as Sample[], pullS: [] as Sample[], pushIn: [] as Sample[], pullIn: [] as Sample[], rssSmallPull: [] as number[], rssSmallPush: [] as number[] };
  try {
    for (let round = 0; round < rounds; round++) {
      const regO = await startRegistry({ auth: 'none' });
      const regS = await startRegistry({ auth: 'none' });
      const regI = await startRegistry({ auth: 'none' });
      regs.push(regO, regS, regI);
      const refO = `${regO.host}/giteaadmin/bench:1`;
      const refS = `${regS.host}/giteaadmin/bench:1`;
      const order = round % 2 === 0 ? ['o', 's'] : ['s', 'o'];
      for (const who of order) {
        if (who === 'o') {
          const r = await timeCmd(process.execPath, [cli, 'push', '--progress', 'quiet', '--ca-file', regO.caFile, '--cache-dir', srcStore.root, `oci:${layout}:big`, refO], stats, nodeEnv);
          if (r.stdout.trim() !== img.descriptor.digest) throw new Error(`push digest mismatch: ${r.stdout}`);
          s.pushO.push(r);
        } else {
          s.pushS.push(await timeCmd(skopeo, ['copy', '--quiet', ...skopeoArgs(regS, 'dest'), `oci:${layout}:big`, `docker://${refS}`], stats));
        }
      }
      for (const who of order) {
        const out = join(work, `pull-${who}-${round}`);
        if (who === 'o') {
          const cache = join(work, `cache-${round}`);
          const r = await timeCmd(process.execPath, [cli, 'pull', '--progress', 'quiet', '--ca-file', regO.caFile, '--cache-dir', cache, '-o', `oci:${out}:big`, refO], stats, nodeEnv);
          if (r.stdout.trim() !== img.descriptor.digest) throw new Error(`pull digest mismatch: ${r.stdout}`);
          s.pullO.push(r);
          rmSync(cache, { recursive: true, force: true });
        } else {
          s.pullS.push(await timeCmd(skopeo, ['copy', '--quiet', ...skopeoArgs(regS, 'src'), `docker://${refS}`, `oci:${out}:big`], stats));
        }
        rmSync(out, { recursive: true, force: true });
      }
      // The library call alone (no process start-up), against a third registry.
      const refI = `${regI.host}/giteaadmin/bench:1`;
      const pi = await runInProcess(['push', srcStore.root, refI, regI.caFile, JSON.stringify(img.descriptor)]);
      s.pushIn.push({ ms: pi.ms, rssMiB: pi.maxRssMiB });
      const pl = await runInProcess(['pull', join(work, `pull-in-${round}`), refI, regI.caFile]);
      if (pl.digest !== img.descriptor.digest) throw new Error('in-process pull digest mismatch');
      s.pullIn.push({ ms: pl.ms, rssMiB: pl.maxRssMiB });
      rmSync(join(work, `pull-in-${round}`), { recursive: true, force: true });
      // Peak RSS against blob size: the 1/20-size image through the same CLI paths.
      const smallRef = `${regO.host}/giteaadmin/bench-small:1`;
      const sp = await runInProcess(['push', srcStore.root, smallRef, regO.caFile, JSON.stringify(small.descriptor)]);
      const sl = await runInProcess(['pull', join(work, `pull-small-${round}`), smallRef, regO.caFile]);
      s.rssSmallPush.push(sp.maxRssMiB);
      s.rssSmallPull.push(sl.maxRssMiB);
      rmSync(join(work, `pull-small-${round}`), { recursive: true, force: true });
      for (const r of [regO, regS, regI]) await r.stop();
    }
    const mibs = (ms: number) => ((totalMiB / ms) * 1000).toFixed(1);
    const list = (a: Sample[]) => a.map((x) => x.ms.toFixed(0)).join(',');
    const cpu = (a: Sample[]) => (a[0]?.cpuMs === undefined ? '' : `  cpu ${med(a.map((x) => x.cpuMs!)).toFixed(0)} ms  rss ${med(a.map((x) => x.rssMiB!)).toFixed(0)} MiB`);
    const row = (name: string, o: Sample[], sk: Sample[]) => {
      const mo = med(o.map((x) => x.ms));
      const ms = med(sk.map((x) => x.ms));
      return [
        `${name}  ratio skopeo/ocistack ${(ms / mo).toFixed(2)}`,
        `  ocistack CLI ${mo.toFixed(0)} ms (${mibs(mo)} MiB/s)${cpu(o)}   [${list(o)}]`,
        `  skopeo       ${ms.toFixed(0)} ms (${mibs(ms)} MiB/s)${cpu(sk)}   [${list(sk)}]`,
      ].join('\n');
    };
    const inproc = (name: string, a: Sample[]) => `  ${name} in-process (no start-up): ${med(a.map((x) => x.ms)).toFixed(0)} ms, peak RSS ${med(a.map((x) => x.rssMiB!)).toFixed(0)} MiB   [${list(a)}]`;
    const rssRatio = (name: string, big: Sample[], smallRss: number[]) => {
      const b = med(big.map((x) => x.rssMiB!));
      const sm = med(smallRss);
      return `peak RSS ${name} (in-process): ${b.toFixed(0)} MiB for ${totalMiB} MiB, ${sm.toFixed(0)} MiB for ${(totalMiB / 20).toFixed(0)} MiB, both ${layers} layers (ratio ${(b / sm).toFixed(2)})`;
    };
    const lines = [
      `registry benchmark: ${totalMiB} MiB in ${layers} layers, loopback TLS, docker-registry, ${rounds} rounds (medians; wall time from process spawn to exit)`,
      startupLine,
      row('push', s.pushO, s.pushS),
      inproc('push', s.pushIn),
      row('pull', s.pullO, s.pullS),
      inproc('pull', s.pullIn),
      rssRatio('push', s.pushIn, s.rssSmallPush),
      rssRatio('pull', s.pullIn, s.rssSmallPull),
      '(time ratio > 1: ocistack faster; RSS ratio near 1: memory does not grow with blob size)',
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    for (const r of regs) await r.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--worker') {
  worker(process.argv.slice(3)).catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  });
}
