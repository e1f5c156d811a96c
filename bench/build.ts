/**
 * Build benchmark (not a test): ocistack vs Buildah on the same generated
 * contexts in one run, each producing an OCI image layout on disk. Prints
 * median wall time, peak RSS and the ocistack/buildah ratios.
 *
 *   npm run bench:build -- [--runs 3] [--scale 1] [--only small,big,app,app-run,runs10,run1] [--json FILE]
 *                          [--cpu-prof DIR] [--baseline-bin OTHER/bin/ocistack.js] [--no-rootless]
 *
 * Workloads (see build-workloads.ts; deterministic, seeded):
 *   small    20,000 files of 1-8 KiB in nested dirs, `COPY . /app`
 *   big      3 x 100 MiB (random, text, mixed), one COPY each
 *   app      FROM busybox (local TLS registry), 8 instructions, 2,000 files
 *   app-run  app plus one RUN (a short script listing the sources into
 *            /app/build), built AND PUSHED to the local TLS registry by both
 *            tools (ocistack `--push`; `buildah bud` + `buildah push docker://`),
 *            each run into a fresh repository
 *   runs10   ten consecutive `RUN echo stepN > /sN` on a ~100 MiB base
 *            (busybox + 2,048 files of 50 KiB under /opt/base, made with umoci in
 *            the setup, bench/base-image.ts, and pushed to the local registry)
 *   run1     `FROM busybox` + `RUN true`: in warm mode the base's snapshot is
 *            cached, so the per-RUN column is the cost of a trivial RUN
 * Workloads with RUN also get a "per RUN ms" column: the median over all RUN
 * steps of all runs, from step start to done as the tool reports them
 * (ocistack: `--progress json` step events; buildah: its `STEP n/m: RUN`
 * line to the next STEP/COMMIT line), taken as the lines arrive. And
 * ocistack runs them a second time as the non-root user `ocistack-rootless`
 * (created with a subordinate id range as in the tests,
 * test/helpers/rootless-user.ts; only when the bench runs as root, and not
 * with `--no-rootless`), as the tool `ocistack-rootless`: its own cache dir,
 * the same Buildah reference (as root).
 * `--scale 0.1` shrinks file counts and sizes for a quick look.
 * `--baseline-bin` also runs another ocistack build (e.g. a checkout of the
 * previous commit, compiled) in the same interleaved runs, as "ocistack@base",
 * so a change is measured under the same machine load as the code it replaces.
 *
 * Each tool runs as a child process under GNU time (`/usr/bin/time -f %M`),
 * whose peak RSS is that of the largest process in the child's tree (for
 * buildah: `buildah bud` and `buildah push`, the larger of the two). Wall time
 * is measured here around the whole command (for buildah: bud + push, the
 * same end product as ocistack's `--output type=oci`).
 *
 * Modes: `cold` = fresh cache/storage every run. `warm` (workloads with a
 * base image) = the base is already in ocistack's blob cache / buildah's
 * storage; buildah gets `--no-cache` so neither reuses built layers
 * (ocistack has no layer cache). Warm RUN workloads keep ocistack's
 * snapshots (extracted chains under the cache dir) from the previous
 * build, as a developer's second build would; their RUNs still run.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../test/helpers/cli.js';
import { busyboxBase } from '../test/helpers/images.js';
import { skopeoInspectArgs, startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { chownTree, giveToUser, rootlessEnv, rootlessWork, type RootlessWork } from '../test/helpers/rootless-cli.js';
import { makeTempDir, requireTool } from '../test/helpers/tools.js';
import { pushBigBase } from './base-image.js';
import { load, log, markdownTable, measure, median, requireGnuTime, sec, ocistackStepTimes, type Measured } from './measure.js';
import { checkParallelGzip } from '../test/layer-gzip-check.js';
import { checkSavedLayerIndex } from '../test/layer-index-check.js';
import { bigFiles, oneRun, smallFiles, tenRuns, typicalApp, typicalAppWithRun, type Workload } from './build-workloads.js';

interface Options {
  runs: number;
  scale: number;
  only: Set<string>;
  json?: string;
  cpuProf?: string;
  baselineBin?: string;
  rootless: boolean;
}

const ALL = ['small', 'big', 'app', 'app-run', 'runs10', 'run1'];

function parseArgs(argv: string[]): Options {
  const o: Options = { runs: 3, scale: 1, only: new Set(ALL), rootless: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--runs') o.runs = Math.max(1, Number.parseInt(v(), 10));
    else if (a === '--scale') o.scale = Number(v());
    else if (a === '--only') o.only = new Set(v().split(','));
    else if (a === '--json') o.json = v();
    else if (a === '--cpu-prof') o.cpuProf = v();
    else if (a === '--baseline-bin') o.baselineBin = v();
    else if (a === '--no-rootless') o.rootless = false;
    else throw new Error(`unknown option ${a} (see the comment at the top of bench/build.ts)`);
  }
  if (!(o.scale > 0)) throw new Error('--scale must be > 0');
  for (const w of o.only) if (!ALL.includes(w)) throw new Error(`unknown workload ${w} (${ALL.join(', ')})`);
  return o;
}

/** Per-RUN times from ocistack's `--progress json` step events (steps whose name has RUN; a cached RUN counts with its lookup time). */
function ocistackRunTimes(): { onLine: (line: string, ms: number) => void; times: number[] } {
  const times: number[] = [];
  return { times, onLine: ocistackStepTimes((st) => /\bRUN\b/.test(st.name) && times.push(st.ms)) };
}

/** Per-RUN times from `buildah bud` output: a `STEP n/m: RUN` line to the next STEP or COMMIT line. */
function buildahRunTimes(): { onLine: (line: string, ms: number) => void; times: number[] } {
  let runStart: number | undefined;
  const times: number[] = [];
  return {
    times,
    onLine: (line, ms) => {
      const step = /^STEP \d+\/\d+: (\S+)/.exec(line);
      if (!step && !line.startsWith('COMMIT')) return;
      if (runStart !== undefined) times.push(ms - runStart);
      runStart = step?.[1] === 'RUN' ? ms : undefined;
    },
  };
}

/** Layer count and total compressed layer bytes of the single image in an OCI layout. */
function layoutSummary(dir: string): { layers: number; bytes: number } {
  const blob = (d: string) => JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', d.slice('sha256:'.length)), 'utf8'));
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  let m = blob(index.manifests[0].digest);
  if (m.manifests) m = blob(m.manifests[0].digest);
  const layers = m.layers as { size: number }[];
  return { layers: layers.length, bytes: layers.reduce((s, l) => s + l.size, 0) };
}

interface Row {
  workload: string;
  tool: string;
  mode: string;
  runsMs: number[];
  rssKiB: number[];
  layers: number;
  layerBytes: number;
  /** Each RUN step's time, over all runs (workloads with RUN). */
  perRunMs: number[];
}

class Bench {
  readonly rows: Row[] = [];
  private seq = 0;
  constructor(
    readonly opts: Options,
    readonly scratch: string,
    readonly reg: TestRegistry | undefined,
    /** The rootless user's work dir, when ocistack also runs rootless. */
    readonly rootless?: RootlessWork,
  ) {}

  private fresh(name: string): string {
    const d = join(this.scratch, `${name}-${++this.seq}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  private row(w: Workload, tool: string, mode: string): Row {
    let r = this.rows.find((x) => x.workload === w.id && x.tool === tool && x.mode === mode);
    if (!r) this.rows.push((r = { workload: w.id, tool, mode, runsMs: [], rssKiB: [], layers: 0, layerBytes: 0, perRunMs: [] }));
    return r;
  }

  private record(r: Row, m: Measured, summary: { layers: number; bytes: number }, perRun: number[] = []): void {
    r.runsMs.push(m.ms);
    r.rssKiB.push(m.rssKiB);
    r.layers = summary.layers;
    r.layerBytes = summary.bytes;
    r.perRunMs.push(...perRun);
  }

  /** A fresh repository in the bench registry for one pushed build. */
  private repo(w: Workload, tool: string): string {
    return `${this.reg!.host}/bench/${w.id}-${tool}-${++this.seq}:latest`;
  }

  /** Layer count and bytes of a pushed image, from its manifest (skopeo, outside the timing). */
  private pushedSummary(ref: string): { layers: number; bytes: number } {
    const r = spawnSync(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(this.reg!), `docker://${ref}`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`skopeo inspect ${ref} failed: ${r.stderr}`);
    const layers = (JSON.parse(r.stdout) as { layers: { size: number }[] }).layers;
    return { layers: layers.length, bytes: layers.reduce((n, l) => n + l.size, 0) };
  }

  /** The rootless user's copy of a workload's context (made once). */
  private userContexts = new Map<string, string>();
  private userContext(w: Workload): string {
    let d = this.userContexts.get(w.id);
    if (!d) this.userContexts.set(w.id, (d = giveToUser(this.rootless!, w.dir, `ctx-${w.id}`)));
    return d;
  }

  /** A fresh cache dir the rootless user owns. */
  freshUserCache(): string {
    const d = join(this.rootless!.dir, `cache-${++this.seq}`);
    mkdirSync(d);
    chownTree(d, this.rootless!.user.uid, this.rootless!.user.gid);
    return d;
  }

  async ocistack(w: Workload, cacheDir: string, record: Row | undefined, bin = BIN, asUser = false): Promise<void> {
    const u = asUser ? this.rootless! : undefined;
    const out = u ? join(u.dir, `out-${++this.seq}`) : this.fresh('oci-out');
    if (u) rmSync(out, { recursive: true, force: true });
    const node = [...(this.opts.cpuProf && !u ? ['--cpu-prof', '--cpu-prof-dir', this.opts.cpuProf] : []), bin];
    const ref = w.push ? this.repo(w, u ? 'ocistack-rootless' : 'ocistack') : undefined;
    const dest = ref ? ['-t', ref, '--push'] : ['-t', `bench-${w.id}:latest`, '--output', `type=oci,dest=${out}`];
    const runTimes = w.runSteps ? ocistackRunTimes() : undefined;
    const args = [...node, 'build', u ? this.userContext(w) : w.dir, ...dest, '--cache-dir', cacheDir, '--progress', runTimes ? 'json' : 'quiet'];
    if (this.reg) args.push('--ca-file', u ? giveToUser(u, this.reg.caFile, 'ca.pem') : this.reg.caFile);
    const m = await measure(process.execPath, args, this.scratch, {
      ...(u ? { as: { uid: u.user.uid, gid: u.user.gid, env: rootlessEnv(u), rssDir: u.dir } } : {}),
      ...(runTimes ? { onLine: runTimes.onLine } : {}),
    });
    if (record) this.record(record, m, ref ? this.pushedSummary(ref) : layoutSummary(out), runTimes?.times);
    rmSync(out, { recursive: true, force: true });
  }

  async buildah(w: Workload, store: string, noCache: boolean, record: Row | undefined): Promise<void> {
    const buildah = requireTool('buildah');
    const out = join(this.fresh('buildah-out'), 'layout');
    const global = ['--root', join(store, 'root'), '--runroot', join(store, 'runroot'), '--storage-driver', 'vfs'];
    const name = `localhost/bench-${w.id}:latest`;
    const bud = [...global, 'bud', '--isolation', 'chroot', '--layers=true', '-t', name];
    if (noCache) bud.push('--no-cache');
    if (this.reg) bud.push('--cert-dir', this.reg.certDir);
    bud.push(w.dir);
    const runTimes = w.runSteps ? buildahRunTimes() : undefined;
    const a = await measure(buildah, bud, this.scratch, runTimes ? { onLine: runTimes.onLine } : {});
    const ref = w.push ? this.repo(w, 'buildah') : undefined;
    const pushArgs = ref ? ['--cert-dir', this.reg!.certDir, name, `docker://${ref}`] : [name, `oci:${out}:latest`];
    const b = await measure(buildah, [...global, 'push', '--quiet', ...pushArgs], this.scratch);
    if (record) this.record(record, { ms: a.ms + b.ms, rssKiB: Math.max(a.rssKiB, b.rssKiB) }, ref ? this.pushedSummary(ref) : layoutSummary(out), runTimes?.times);
    rmSync(out, { recursive: true, force: true });
  }

  async workload(w: Workload): Promise<void> {
    const n = this.opts.runs;
    const base = this.opts.baselineBin;
    const rootless = !!(w.runSteps && this.rootless);
    log(`\n== ${w.id}: ${w.title} (${(w.bytes / 2 ** 20).toFixed(1)} MiB), ${n} run(s) each`);
    for (let i = 0; i < n; i++) {
      // Interleaved, so drift on the machine hits both tools alike.
      const cache = this.fresh('oci-cache');
      await this.ocistack(w, cache, this.row(w, 'ocistack', 'cold'));
      rmSync(cache, { recursive: true, force: true });
      if (base) {
        const c = this.fresh('oci-cache');
        await this.ocistack(w, c, this.row(w, 'ocistack@base', 'cold'), base);
        rmSync(c, { recursive: true, force: true });
      }
      if (rootless) {
        const c = this.freshUserCache();
        await this.ocistack(w, c, this.row(w, 'ocistack-rootless', 'cold'), BIN, true);
        rmSync(c, { recursive: true, force: true });
      }
      const store = this.fresh('buildah-store');
      await this.buildah(w, store, false, this.row(w, 'buildah', 'cold'));
      rmSync(store, { recursive: true, force: true });
      log(`  run ${i + 1}/${n} cold: ocistack ${sec(last(this.row(w, 'ocistack', 'cold')))} s,${base ? ` ocistack@base ${sec(last(this.row(w, 'ocistack@base', 'cold')))} s,` : ''}${rootless ? ` rootless ${sec(last(this.row(w, 'ocistack-rootless', 'cold')))} s,` : ''} buildah ${sec(last(this.row(w, 'buildah', 'cold')))} s${load()}`);
    }
    if (!w.usesBase) return;
    const cache = this.fresh('oci-cache');
    const baseCache = this.fresh('oci-cache');
    const store = this.fresh('buildah-store');
    const userCache = rootless ? this.freshUserCache() : undefined;
    await this.ocistack(w, cache, undefined);
    if (base) await this.ocistack(w, baseCache, undefined, base);
    if (userCache) await this.ocistack(w, userCache, undefined, BIN, true);
    await this.buildah(w, store, false, undefined);
    for (let i = 0; i < n; i++) {
      await this.ocistack(w, cache, this.row(w, 'ocistack', 'warm'));
      if (base) await this.ocistack(w, baseCache, this.row(w, 'ocistack@base', 'warm'), base);
      if (userCache) await this.ocistack(w, userCache, this.row(w, 'ocistack-rootless', 'warm'), BIN, true);
      await this.buildah(w, store, true, this.row(w, 'buildah', 'warm'));
      log(`  run ${i + 1}/${n} warm: ocistack ${sec(last(this.row(w, 'ocistack', 'warm')))} s,${base ? ` ocistack@base ${sec(last(this.row(w, 'ocistack@base', 'warm')))} s,` : ''}${userCache ? ` rootless ${sec(last(this.row(w, 'ocistack-rootless', 'warm')))} s,` : ''} buildah ${sec(last(this.row(w, 'buildah', 'warm')))} s${load()}`);
    }
    rmSync(cache, { recursive: true, force: true });
    if (userCache) rmSync(userCache, { recursive: true, force: true });
    rmSync(baseCache, { recursive: true, force: true });
    rmSync(store, { recursive: true, force: true });
  }
}

function last(r: Row): number {
  return r.runsMs[r.runsMs.length - 1]!;
}

/** `docker build` needs a daemon; this benchmark only reports when there is none. */
function dockerNote(): string {
  const r = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0 && r.stdout.trim()) return `docker ${r.stdout.trim()} is available but not benchmarked (its daemon does the work, so its RSS is not the client's)`;
  return 'docker build skipped: no Docker daemon reachable';
}

function table(rows: Row[]): string {
  const head = ['workload', 'tool', 'mode', 'median s', 'min-max s', 'peak RSS MiB', 'layers', 'layers MiB', 'time x', 'RSS x', 'per RUN ms', 'per RUN x'];
  const lines = [head];
  for (const r of rows) {
    const base = rows.find((x) => x.workload === r.workload && x.mode === r.mode && x.tool === 'buildah');
    const t = median(r.runsMs);
    const rss = Math.max(...r.rssKiB);
    const mine = r.tool.startsWith('ocistack');
    const tr = mine && base ? (t / median(base.runsMs)).toFixed(2) : '';
    const rr = mine && base ? (rss / Math.max(...base.rssKiB)).toFixed(2) : '';
    const perRun = r.perRunMs.length ? median(r.perRunMs) : undefined;
    const perRunX = mine && perRun !== undefined && base?.perRunMs.length ? (perRun / median(base.perRunMs)).toFixed(2) : '';
    lines.push([
      r.workload, r.tool, r.mode, sec(t), `${sec(Math.min(...r.runsMs))}-${sec(Math.max(...r.runsMs))}`,
      (rss / 1024).toFixed(0), String(r.layers), (r.layerBytes / 2 ** 20).toFixed(1), tr, rr,
      perRun === undefined ? '' : `${perRun.toFixed(0)} (${Math.min(...r.perRunMs).toFixed(0)}-${Math.max(...r.perRunMs).toFixed(0)})`, perRunX,
    ]);
  }
  return markdownTable(head, lines.slice(1));
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  requireTool('buildah');
  requireGnuTime();
  const root = makeTempDir('bench-build');
  const scratch = join(root, 'scratch');
  mkdirSync(scratch, { recursive: true });
  log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}`);
  log(dockerNote());
  log(await checkParallelGzip());
  log(await checkSavedLayerIndex());
  const needsBase = ['app', 'app-run', 'runs10', 'run1'].some((w) => opts.only.has(w));
  const reg = needsBase ? await startRegistry() : undefined;
  const withRun = ['app-run', 'runs10', 'run1'].some((w) => opts.only.has(w));
  let rootless: RootlessWork | undefined;
  if (withRun && opts.rootless) {
    if (process.getuid?.() === 0) rootless = rootlessWork('bench-rootless');
    else log('ocistack-rootless skipped: the bench creates that user, which needs root (or pass --no-rootless)');
  }
  const bench = new Bench(opts, scratch, reg, rootless);
  try {
    const ctx = join(root, 'contexts');
    if (opts.only.has('small')) await bench.workload(smallFiles(ctx, Math.round(20_000 * opts.scale)));
    if (opts.only.has('big')) await bench.workload(bigFiles(ctx, Math.max(1, Math.round(100 * opts.scale))));
    const busybox = reg ? await busyboxBase(reg) : '';
    const files = Math.round(2_000 * opts.scale);
    if (opts.only.has('app')) await bench.workload(typicalApp(ctx, busybox, files));
    if (opts.only.has('app-run')) await bench.workload(typicalAppWithRun(ctx, busybox, files));
    if (opts.only.has('runs10')) {
      const big = await pushBigBase(reg!, Math.max(1, Math.round(100 * opts.scale)));
      await bench.workload(tenRuns(ctx, big.ref, Math.round(big.bytes / 2 ** 20)));
    }
    if (opts.only.has('run1')) await bench.workload(oneRun(ctx, busybox));
  } finally {
    await reg?.stop();
  }
  process.stdout.write(`\nocistack vs buildah ${spawnSync(requireTool('buildah'), ['--version'], { encoding: 'utf8' }).stdout.trim()}, ${opts.runs} run(s), median; x = ocistack/buildah (lower is better for ocistack)\n`);
  process.stdout.write(table(bench.rows) + '\n');
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ options: { ...opts, only: [...opts.only] }, rows: bench.rows }, null, 2));
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
