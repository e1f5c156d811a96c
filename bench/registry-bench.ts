/**
 * Registry benchmark (not a test): push and pull of a 100 MB, 5-layer image
 * over loopback TLS, ocistack vs `skopeo copy` of the same image in the same
 * run, each against its own fresh docker-registry. Also peak RSS of the
 * ocistack side for a small and a large image, to show it does not grow with
 * blob size. Prints times and ratios.
 *
 *   npx tsc -p . && node dist/bench/registry-bench.js [--mb 100] [--layers 5]
 *
 * Each ocistack operation runs in a child process so its peak RSS is its own.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeOciLayout } from '../lib/image/layout.js';
import { BlobStore } from '../lib/image/store.js';
import type { Descriptor } from '../lib/image/types.js';
import { pullImage, pushImage } from '../lib/registry/index.js';
import { makeRandomImage } from '../test/helpers/random-image.js';
import { skopeoArgs, startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { makeTempDir, requireTool } from '../test/helpers/tools.js';

interface WorkerResult {
  ms: number;
  maxRssMiB: number;
  digest: string;
}

const self = fileURLToPath(import.meta.url);

/** Child mode: one push or pull, report time and peak RSS. */
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

function runNode(args: string[]): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [self, '--worker', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`worker exited ${code}`))));
  });
}

function timeCmd(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('close', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} exited ${code}`))));
  });
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

async function main(): Promise<void> {
  const totalMiB = arg('mb', 100);
  const layers = arg('layers', 5);
  const skopeo = requireTool('skopeo');
  const work = makeTempDir('bench');
  const srcStore = new BlobStore(join(work, 'src'));
  const sizes = Array.from({ length: layers }, () => Math.floor((totalMiB * 1024 * 1024) / layers));
  const img = await makeRandomImage(srcStore, sizes);
  const small = await makeRandomImage(srcStore, [Math.floor((totalMiB * 1024 * 1024) / 20)]);
  const layout = join(work, 'layout');
  await writeOciLayout({ dir: layout, store: srcStore, manifests: [{ descriptor: img.descriptor, tag: 'big' }] });
  const rounds = arg('rounds', 3);
  const regs: TestRegistry[] = [];
  const t = { pushO: [] as number[], pushS: [] as number[], pullO: [] as number[], pullS: [] as number[], rssPush: [] as number[], rssPull: [] as number[] };
  let rssSmall = { push: 0, pull: 0 };
  try {
    // Rounds alternate the tools, each against fresh registries, so a busy machine hurts both alike; medians are reported.
    for (let round = 0; round < rounds; round++) {
      const regO = await startRegistry({ auth: 'none' });
      const regS = await startRegistry({ auth: 'none' });
      regs.push(regO, regS);
      const refO = `${regO.host}/giteaadmin/bench:1`;
      const refS = `${regS.host}/giteaadmin/bench:1`;
      const order = round % 2 === 0 ? ['o', 's'] : ['s', 'o'];
      for (const who of order) {
        if (who === 'o') {
          const r = await runNode(['push', srcStore.root, refO, regO.caFile, JSON.stringify(img.descriptor)]);
          if (r.digest !== img.descriptor.digest) throw new Error('push digest mismatch');
          t.pushO.push(r.ms);
          t.rssPush.push(r.maxRssMiB);
        } else {
          t.pushS.push(await timeCmd(skopeo, ['copy', '--quiet', ...skopeoArgs(regS, 'dest'), `oci:${layout}:big`, `docker://${refS}`]));
        }
      }
      for (const who of order) {
        if (who === 'o') {
          const r = await runNode(['pull', join(work, `pull-o-${round}`), refO, regO.caFile]);
          if (r.digest !== img.descriptor.digest) throw new Error('pull digest mismatch');
          t.pullO.push(r.ms);
          t.rssPull.push(r.maxRssMiB);
          rmSync(join(work, `pull-o-${round}`), { recursive: true, force: true });
        } else {
          t.pullS.push(await timeCmd(skopeo, ['copy', '--quiet', ...skopeoArgs(regS, 'src'), `docker://${refS}`, `oci:${join(work, `pull-s-${round}`)}:big`]));
          rmSync(join(work, `pull-s-${round}`), { recursive: true, force: true });
        }
      }
      if (round === 0) {
        // Peak RSS against blob size: a 1/20-size image through the same paths.
        const smallRef = `${regO.host}/giteaadmin/bench-small:1`;
        rssSmall = {
          push: (await runNode(['push', srcStore.root, smallRef, regO.caFile, JSON.stringify(small.descriptor)])).maxRssMiB,
          pull: (await runNode(['pull', join(work, 'pull-small'), smallRef, regO.caFile])).maxRssMiB,
        };
      }
      await regO.stop();
      await regS.stop();
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    const mb = (ms: number) => ((totalMiB / ms) * 1000).toFixed(1);
    const row = (name: string, o: number[], sk: number[]) =>
      `${name}  ocistack ${med(o).toFixed(0)} ms (${mb(med(o))} MiB/s)  skopeo ${med(sk).toFixed(0)} ms (${mb(med(sk))} MiB/s)  ratio skopeo/ocistack ${(med(sk) / med(o)).toFixed(2)}   [ocistack ${o.map((x) => x.toFixed(0)).join(',')}; skopeo ${sk.map((x) => x.toFixed(0)).join(',')}]`;
    const lines = [
      `registry benchmark: ${totalMiB} MiB in ${layers} layers, loopback TLS, docker-registry, ${rounds} rounds (medians)`,
      row('push', t.pushO, t.pushS),
      row('pull', t.pullO, t.pullS),
      `peak RSS push: ${med(t.rssPush).toFixed(0)} MiB for ${totalMiB} MiB, ${rssSmall.push.toFixed(0)} MiB for ${(totalMiB / 20).toFixed(0)} MiB (ratio ${(med(t.rssPush) / rssSmall.push).toFixed(2)})`,
      `peak RSS pull: ${med(t.rssPull).toFixed(0)} MiB for ${totalMiB} MiB, ${rssSmall.pull.toFixed(0)} MiB for ${(totalMiB / 20).toFixed(0)} MiB (ratio ${(med(t.rssPull) / rssSmall.pull).toFixed(2)})`,
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
