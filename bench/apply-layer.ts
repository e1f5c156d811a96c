/**
 * Benchmark of applying one layer with many small files (lib/rootfs's
 * LayerApplier, diff form as layer snapshots use it, fed by read-layer.ts
 * from a gzip blob in a store): a generated node_modules-like tree of
 * ~8,500 small files at depth 3-7 plus a few 4 MiB files, written with
 * lib/layer's writeLayer once, then applied RUNS times into fresh dirs
 * above one small lower dir. Several implementations (the `dist` roots
 * given, e.g. this tree's and an older worktree's) are run interleaved, so
 * a noisy machine slows each of them alike. Prints ms per layer and per
 * file for each, and the load average.
 *
 *   node dist/bench/apply-layer.js [--runs N] [--files N] [DIST_ROOT ...]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BlobStore } from '../lib/image/store.js';
import type { LayerEntry } from '../lib/layer/types.js';
import { writeLayer } from '../lib/layer/write.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const runs = arg('--runs', 5);
const files = arg('--files', 8500);
const roots = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
if (roots.length === 0) roots.push(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));

async function* tree(): AsyncGenerator<LayerEntry> {
  const mtime = 1704164645;
  const dirs = new Set<string>();
  const dir = (p: string): LayerEntry[] => {
    const out: LayerEntry[] = [];
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        out.push({ path: `/${d}`, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime });
      }
    }
    return out;
  };
  for (let i = 0; i < files; i++) {
    const pkg = `pkg${i % 400}`;
    const sub = ['lib', 'dist/cjs', 'dist/esm/internal', 'src/a/b/c'][i % 4]!;
    const d = `app/node_modules/${pkg}/${sub}`;
    yield* dir(d);
    const body = Buffer.from(`module.exports = ${i}; // ${'x'.repeat(i % 2000)}\n`);
    yield { path: `/${d}/f${i}.js`, type: 'file', mode: i % 7 === 0 ? 0o755 : 0o644, uid: 0, gid: 0, mtime, size: body.length, content: async function* () { yield body; } };
  }
  for (let i = 0; i < 3; i++) {
    const body = Buffer.alloc(4 << 20, i + 1);
    yield { path: `/app/node_modules/big${i}.bin`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: body.length, content: async function* () { yield body; } };
  }
}

interface Impl {
  root: string;
  LayerApplier: any;
  LayeredView: any;
  RootfsWarnings: any;
  readLayerEntries: any;
  ms: number[];
}

async function load(root: string): Promise<Impl> {
  const m = async (p: string): Promise<any> => import(pathToFileURL(path.join(root, 'lib/rootfs', p)).href);
  return {
    root,
    LayerApplier: (await m('apply-layer.js')).LayerApplier,
    LayeredView: (await m('layer-view.js')).LayeredView,
    RootfsWarnings: (await m('warnings.js')).RootfsWarnings,
    readLayerEntries: (await m('read-layer.js')).readLayerEntries,
    ms: [],
  };
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'apply-bench-'));
  try {
    const store = new BlobStore(path.join(tmp, 'store'));
    const layer = await writeLayer(tree(), { store });
    const lower = path.join(tmp, 'lower');
    fs.mkdirSync(path.join(lower, 'app'), { recursive: true });
    fs.mkdirSync(path.join(lower, 'etc'));
    fs.writeFileSync(path.join(lower, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
    const impls = await Promise.all(roots.map(load));
    const privileged = process.getuid?.() === 0;
    let n = 0;
    for (let r = 0; r < runs; r++) {
      for (const impl of impls) {
        const dest = path.join(tmp, `run${n++}`);
        fs.mkdirSync(dest, { mode: 0o755 });
        const lowers = new impl.LayeredView([{ dir: lower, opaque: new Set(), whiteouts: true }]);
        const applier = new impl.LayerApplier({ dest, privileged, warnings: new impl.RootfsWarnings(), diff: { lowers, opaqueXattr: privileged ? 'trusted.overlay.opaque' : 'user.overlay.opaque' } }, layer.digest);
        const t0 = performance.now();
        let ok = false;
        try {
          await impl.readLayerEntries(store, layer.digest, (e: unknown, x: unknown, f: unknown) => applier.apply(e, x, f));
          ok = true;
        } finally {
          applier.finish(ok);
        }
        impl.ms.push(performance.now() - t0);
        fs.rmSync(dest, { recursive: true, force: true });
      }
    }
    const entries = files + 3;
    const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    process.stdout.write(`layer ${layer.digest.slice(0, 19)}: ${entries} files, ${(layer.size / 1e6).toFixed(1)} MB gzip; ${runs} runs each, interleaved; load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
    for (const impl of impls) {
      const med = median(impl.ms);
      process.stdout.write(`${impl.root}: median ${med.toFixed(0)} ms/layer, ${((med / entries) * 1000).toFixed(0)} µs/file; runs ${impl.ms.map((x) => x.toFixed(0)).join(' ')}\n`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
