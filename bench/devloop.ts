/**
 * Development-loop benchmark (not a test; issue 11): the builds a developer
 * repeats all day, on a generated typical stack app (bench/devloop-app.ts:
 * node_modules-like tree, sources, config; Dockerfile with WORKDIR, four
 * COPYs, a RUN, ENV, EXPOSE, USER, CMD on busybox from a local TLS
 * registry), each built AND pushed by
 *   - ocistack: the built bin, a fresh process every time, its own cache dir,
 *     `--progress json` (its step events give the per-step table);
 *   - Buildah: `buildah bud --layers` + `buildah push`, as root, chroot
 *     isolation, storage (overlay driver by default) in a temp dir;
 *   - Docker: Debian's docker.io `docker build` (BuildKit) + `docker push`
 *     against a private dockerd this benchmark starts (test/helpers/dockerd.ts),
 *     warmed with one build first; skipped with the reason when it cannot start.
 * Scenarios per tool, in this order within a run: `cold` (empty cache, a
 * fresh repository), `unchanged` (the same build again), `one-file` (one
 * source file edited). Then the same at the next --scale. Plus layer writing:
 * ocistack's layer writer on node_modules (bench/layer-write.ts) against
 * `tar -c | gzip -6` and `tar -c | pigz -6` of the same tree.
 *
 *   npm run bench -- [--scale 1,10] [--runs 3] [--only ocistack,buildah,docker,layers]
 *                    [--buildah-driver overlay|vfs] [--json FILE] [--keep-env]
 *
 * Wall time is measured around each command here (Buildah, Docker: build +
 * push); peak RSS with GNU time (for Docker only the client's, which says
 * nothing: the daemon does the work, so it is not shown). ocistack runs
 * without NODE_EXTRA_CA_CERTS (some environments point it at the whole
 * system bundle, ~40 ms per Node start; see bench/registry-bench.ts) unless
 * --keep-env. Runs interleave the tools, so load from other work on the
 * machine hits all alike; figures are medians of --runs.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../test/helpers/cli.js';
import { ensureIdpHostsEntry, GITEA_HOST } from '../test/helpers/gitea-registry.js';
import { busyboxBase } from '../test/helpers/images.js';
import { skopeoInspectArgs, startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { makeTempDir, removeTempDir, requireTool } from '../test/helpers/tools.js';
import { generateDevloopApp, type DevloopApp } from './devloop-app.js';
import { ensureDockerInstalled, startDockerd, type Dockerd } from '../test/helpers/dockerd.js';
import { loadAverages, log, machineLine, markdownTable, measure, median, requireGnuTime, sec, load, ocistackStepTimes, type Measured } from './measure.js';

const TOOLS = ['ocistack', 'buildah', 'docker'] as const;
type Tool = (typeof TOOLS)[number];
const SCENARIOS = ['cold', 'unchanged', 'one-file'] as const;
type Scenario = (typeof SCENARIOS)[number];
const LAYER_TOOLS = ['ocistack layer writer', 'tar + gzip -6', 'tar + pigz -6'] as const;

interface Options {
  scales: number[];
  runs: number;
  only: Set<string>;
  buildahDriver: string;
  json?: string;
  keepEnv: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { scales: [1, 10], runs: 3, only: new Set([...TOOLS, 'layers']), buildahDriver: 'overlay', keepEnv: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--scale') o.scales = v().split(',').map(Number);
    else if (a === '--runs') o.runs = Math.max(1, Number.parseInt(v(), 10));
    else if (a === '--only') o.only = new Set(v().split(','));
    else if (a === '--buildah-driver') o.buildahDriver = v();
    else if (a === '--json') o.json = v();
    else if (a === '--keep-env') o.keepEnv = true;
    else throw new Error(`unknown option ${a} (see the comment at the top of bench/devloop.ts)`);
  }
  if (o.scales.some((s) => !(s > 0))) throw new Error('--scale takes positive numbers, e.g. 1,10');
  for (const w of o.only) if (![...TOOLS, 'layers'].includes(w)) throw new Error(`unknown --only part ${w} (${[...TOOLS, 'layers'].join(', ')})`);
  return o;
}

interface Row {
  scale: number;
  tool: string;
  scenario: string;
  ms: number[];
  rssKiB: number[];
  /** Whether each unchanged rebuild pushed the same manifest digest as the build before it. */
  sameDigest: boolean[];
  /** Compressed bytes (layer writing). */
  bytes?: number;
  /** ocistack: each step's time (start to done/cached event, ms) per run, by step name. */
  steps?: Map<string, number[]>;
}

/** Time per step name (a scenario's table says which step its time went to; the rest is start-up, pulling and pushing). */
function stepTimer(): { onLine: (line: string, ms: number) => void; steps: Map<string, number> } {
  const steps = new Map<string, number>();
  return { steps, onLine: ocistackStepTimes((st) => steps.set(st.name, (steps.get(st.name) ?? 0) + st.ms)) };
}

class Devloop {
  readonly rows: Row[] = [];
  readonly notes: string[] = [];
  /** Tools that failed: skipped from then on, with the reason in `notes`. */
  private readonly broken = new Set<string>();
  private seq = 0;
  private readonly nodeEnv: NodeJS.ProcessEnv;

  constructor(
    readonly opts: Options,
    readonly scratch: string,
    readonly reg: TestRegistry,
    readonly docker: Dockerd | undefined,
  ) {
    this.nodeEnv = opts.keepEnv ? process.env : Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_EXTRA_CA_CERTS'));
  }

  private fresh(name: string): string {
    const d = join(this.scratch, `${name}-${++this.seq}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  row(scale: number, tool: string, scenario: string): Row {
    let r = this.rows.find((x) => x.scale === scale && x.tool === tool && x.scenario === scenario);
    if (!r) this.rows.push((r = { scale, tool, scenario, ms: [], rssKiB: [], sameDigest: [] }));
    return r;
  }

  /** The pushed manifest's digest (skopeo, outside the timing). */
  private pushedDigest(ref: string): string {
    const r = spawnSync(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(this.reg), `docker://${ref}`]);
    if (r.status !== 0) throw new Error(`skopeo inspect ${ref} failed: ${r.stderr}`);
    return 'sha256:' + createHash('sha256').update(r.stdout).digest('hex');
  }

  /** One tool's state for one run of the three scenarios: build+push runs against it. */
  private async toolRun(tool: Tool, app: DevloopApp, run: number): Promise<void> {
    const ref = `${this.reg.host}/devloop/${tool}-${app.scale}x-${++this.seq}:latest`;
    const state = this.fresh(`${tool}-state`);
    // Every run starts from the generated sources.
    writeFileSync(join(app.dir, app.changedFile), app.changedOriginal);
    let build: () => Promise<Measured & { steps?: Map<string, number> }>;
    let cleanup: () => Promise<void> = async () => {};
    if (tool === 'ocistack') build = () => this.ocistack(app, ref, state);
    else if (tool === 'buildah') {
      build = () => this.buildah(app, ref, state);
      cleanup = async () => this.buildahCleanup(state);
    } else {
      await this.dockerReset();
      build = () => this.dockerBuild(app, ref);
      cleanup = () => this.dockerReset();
    }
    try {
      let previous: string | undefined;
      for (const scenario of SCENARIOS) {
        if (scenario === 'one-file') writeFileSync(join(app.dir, app.changedFile), `${app.changedOriginal}// edit ${tool} run ${run}\n`);
        const m = await build();
        const r = this.row(app.scale, tool, scenario);
        r.ms.push(m.ms);
        r.rssKiB.push(m.rssKiB);
        if (m.steps) {
          r.steps ??= new Map();
          for (const [name, ms] of m.steps) r.steps.set(name, [...(r.steps.get(name) ?? []), ms]);
        }
        const digest = this.pushedDigest(ref);
        if (scenario === 'unchanged') r.sameDigest.push(digest === previous);
        previous = digest;
      }
    } finally {
      await cleanup();
      rmSync(state, { recursive: true, force: true });
    }
  }

  private async ocistack(app: DevloopApp, ref: string, cacheDir: string): Promise<Measured & { steps: Map<string, number> }> {
    const args = [BIN, 'build', app.dir, '-t', ref, '--push', '--cache-dir', cacheDir, '--ca-file', this.reg.caFile, '--progress', 'json'];
    const t = stepTimer();
    const m = await measure(process.execPath, args, this.scratch, { env: this.nodeEnv, onLine: t.onLine });
    return { ...m, steps: t.steps };
  }

  private buildahGlobal(store: string): string[] {
    return ['--root', join(store, 'root'), '--runroot', join(store, 'runroot'), '--storage-driver', this.opts.buildahDriver];
  }

  private async buildah(app: DevloopApp, ref: string, store: string): Promise<Measured> {
    const buildah = requireTool('buildah');
    const g = this.buildahGlobal(store);
    const name = `localhost/devloop-${app.scale}x:latest`;
    const a = await measure(buildah, [...g, 'bud', '--quiet', '--isolation', 'chroot', '--layers=true', '--cert-dir', this.reg.certDir, '-t', name, app.dir], this.scratch);
    const b = await measure(buildah, [...g, 'push', '--quiet', '--cert-dir', this.reg.certDir, name, `docker://${ref}`], this.scratch);
    return { ms: a.ms + b.ms, rssKiB: Math.max(a.rssKiB, b.rssKiB) };
  }

  /** Remove Buildah's containers and images (and any mount left), so its storage dir can be deleted. */
  private buildahCleanup(store: string): void {
    const buildah = requireTool('buildah');
    const g = this.buildahGlobal(store);
    spawnSync(buildah, [...g, 'rm', '--all'], { stdio: 'ignore' });
    spawnSync(buildah, [...g, 'rmi', '--all', '--force'], { stdio: 'ignore' });
    unmountUnder(store);
  }

  private async dockerBuild(app: DevloopApp, ref: string): Promise<Measured> {
    const d = this.docker!;
    const a = await measure(d.docker, ['build', '--quiet', '--network', 'host', '-t', ref, app.dir], this.scratch, { env: d.env });
    const b = await measure(d.docker, ['push', '--quiet', ref], this.scratch, { env: d.env });
    return { ms: a.ms + b.ms, rssKiB: Math.max(a.rssKiB, b.rssKiB) };
  }

  /** Empty Docker's build cache and image store (the daemon stays up and warm). */
  private async dockerReset(): Promise<void> {
    const d = this.docker!;
    spawnSync(d.docker, ['builder', 'prune', '--all', '--force'], { env: d.env, stdio: 'ignore' });
    const ids = spawnSync(d.docker, ['images', '--all', '--quiet'], { env: d.env, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    if (ids.length) spawnSync(d.docker, ['rmi', '--force', ...new Set(ids)], { env: d.env, stdio: 'ignore' });
  }

  /** Warm the daemon: one full build (base pulled, BuildKit loaded), then an empty cache again. */
  async warmDocker(app: DevloopApp): Promise<void> {
    if (!this.docker || this.broken.has('docker')) return;
    try {
      await this.dockerReset();
      const m = await this.dockerBuild(app, `${this.reg.host}/devloop/docker-warmup:latest`);
      log(`  docker warm-up build+push: ${sec(m.ms)} s`);
      await this.dockerReset();
    } catch (e) {
      this.fail('docker', e);
    }
  }

  private fail(tool: string, e: unknown): void {
    this.broken.add(tool);
    // The first line names the command, the last lines say why.
    const lines = (e as Error).message.split('\n').filter((l) => l.trim());
    const why = lines.length > 12 ? [lines[0]!, '...', ...lines.slice(-10)] : lines;
    const msg = `${tool} failed and is skipped from here on: ${why.join('\n    ')}`;
    this.notes.push(msg);
    log(`  ${msg}`);
  }

  async scale(app: DevloopApp): Promise<void> {
    const tools = TOOLS.filter((t) => this.opts.only.has(t) && (t !== 'docker' || this.docker));
    log(`\n== ${app.scale}x: ${app.files} files, ${(app.bytes / 1e6).toFixed(0)} MB (node_modules ${app.nodeModules.files} files, ${(app.nodeModules.bytes / 1e6).toFixed(0)} MB), ${this.opts.runs} run(s)`);
    if (tools.includes('docker')) await this.warmDocker(app);
    for (let i = 0; i < this.opts.runs; i++) {
      const parts: string[] = [];
      for (const t of tools) {
        if (this.broken.has(t)) continue;
        try {
          await this.toolRun(t, app, i);
          parts.push(`${t} ${SCENARIOS.map((s) => sec(last(this.row(app.scale, t, s)))).join('/')}`);
        } catch (e) {
          this.fail(t, e);
        }
      }
      log(`  run ${i + 1}/${this.opts.runs} cold/unchanged/one-file s: ${parts.join(', ')}${load()}`);
    }
    writeFileSync(join(app.dir, app.changedFile), app.changedOriginal);
    if (this.opts.only.has('layers')) await this.layers(app);
  }

  /** Layer writing of node_modules: ocistack's writer vs tar | gzip -6 and tar | pigz -6. */
  async layers(app: DevloopApp): Promise<void> {
    const writer = join(import.meta.dirname, 'layer-write.js');
    for (let i = 0; i < this.opts.runs; i++) {
      const parts: string[] = [];
      for (const t of LAYER_TOOLS) {
        const out = this.fresh('layer-out');
        let m: Measured;
        let bytes: number;
        if (t === 'ocistack layer writer') {
          let line = '';
          m = await measure(process.execPath, [writer, app.dir, 'node_modules', out], this.scratch, { env: this.nodeEnv, onLine: (l) => (line = l.startsWith('{') ? l : line) });
          bytes = (JSON.parse(line) as { size: number }).size;
        } else {
          const gz = t === 'tar + gzip -6' ? 'gzip -6' : 'pigz -6';
          const file = join(out, 'layer.tar.gz');
          m = await measure('sh', ['-c', `tar -C "$1" -cf - node_modules | ${gz} > "$2"`, 'sh', app.dir, file], this.scratch);
          bytes = readFileSync(file).length;
        }
        rmSync(out, { recursive: true, force: true });
        const r = this.row(app.scale, t, 'layer write');
        r.ms.push(m.ms);
        r.rssKiB.push(m.rssKiB);
        r.bytes = bytes;
        parts.push(`${t} ${sec(m.ms)} s`);
      }
      log(`  layers run ${i + 1}/${this.opts.runs}: ${parts.join(', ')}${load()}`);
    }
  }
}

function last(r: Row): number {
  return r.ms[r.ms.length - 1]!;
}

/** Lazily unmount whatever is mounted below `dir` (deepest first), so it can be removed. */
function unmountUnder(dir: string): void {
  const mounts = spawnSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).stdout.split('\n').filter((m) => m.startsWith(dir + '/'));
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m]);
}

function version(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env });
  return (r.stdout || r.stderr || '').split('\n')[0]!.trim() || '?';
}

function resultTable(rows: Row[]): string {
  const head = ['scale', 'scenario', 'tool', 'median s', 'min-max s', 'peak RSS MiB', 'x buildah', 'x docker', 'same digest'];
  const out: string[][] = [];
  for (const r of rows.filter((x) => x.scenario !== 'layer write')) {
    const t = median(r.ms);
    const ratio = (tool: string): string => {
      const b = rows.find((x) => x.scale === r.scale && x.scenario === r.scenario && x.tool === tool);
      return r.tool === 'ocistack' && b ? (t / median(b.ms)).toFixed(2) : '';
    };
    out.push([
      `${r.scale}x`, r.scenario, r.tool, sec(t), `${sec(Math.min(...r.ms))}-${sec(Math.max(...r.ms))}`,
      r.tool === 'docker' ? 'daemon' : (Math.max(...r.rssKiB) / 1024).toFixed(0), ratio('buildah'), ratio('docker'),
      r.sameDigest.length ? `${r.sameDigest.filter(Boolean).length}/${r.sameDigest.length}` : '',
    ]);
  }
  return markdownTable(head, out);
}

/** Where ocistack's time went: each step's median per scenario, and the rest (start-up, pull, push). */
function stepTable(rows: Row[]): string {
  const head = ['scale', 'scenario', 'step', 'median ms'];
  const out: string[][] = [];
  for (const r of rows.filter((x) => x.tool === 'ocistack' && x.steps)) {
    let sum = 0;
    for (const [name, ms] of r.steps!) {
      const m = median(ms);
      sum += m;
      out.push([`${r.scale}x`, r.scenario, name.length > 60 ? name.slice(0, 57) + '...' : name, m.toFixed(0)]);
    }
    out.push([`${r.scale}x`, r.scenario, '(rest: start-up, pull, push; total minus steps)', (median(r.ms) - sum).toFixed(0)]);
  }
  return markdownTable(head, out);
}

function layerTable(rows: Row[]): string {
  const head = ['scale', 'writer', 'median s', 'min-max s', 'peak RSS MiB', 'compressed MB', 'x pigz -6'];
  const out: string[][] = [];
  for (const r of rows.filter((x) => x.scenario === 'layer write')) {
    const pigz = rows.find((x) => x.scale === r.scale && x.scenario === 'layer write' && x.tool === 'tar + pigz -6');
    out.push([`${r.scale}x`, r.tool, sec(median(r.ms)), `${sec(Math.min(...r.ms))}-${sec(Math.max(...r.ms))}`, (Math.max(...r.rssKiB) / 1024).toFixed(0), ((r.bytes ?? 0) / 1e6).toFixed(1), pigz ? (median(r.ms) / median(pigz.ms)).toFixed(2) : '']);
  }
  return markdownTable(head, out);
}

/** The targets, each against this run's figure (only those this run measured). */
function targetTable(rows: Row[]): string {
  const get = (scale: number, tool: string, scenario: string) => rows.find((x) => x.scale === scale && x.tool === tool && x.scenario === scenario);
  const out: string[][] = [];
  const add = (target: string, value: number | undefined, limit: number, unit: string, digits = 2) => {
    if (value === undefined) return;
    out.push([target, `${value.toFixed(digits)}${unit}`, value <= limit ? 'met' : 'NOT met']);
  };
  const secs = (r: Row | undefined) => (r ? median(r.ms) / 1000 : undefined);
  add('unchanged rebuild+push <= 0.3 s at 1x', secs(get(1, 'ocistack', 'unchanged')), 0.3, ' s');
  add('unchanged rebuild+push <= 2 s at 10x', secs(get(10, 'ocistack', 'unchanged')), 2, ' s');
  add('one changed file <= 0.5 s at 1x', secs(get(1, 'ocistack', 'one-file')), 0.5, ' s');
  for (const scale of [...new Set(rows.map((r) => r.scale))]) {
    const o = get(scale, 'ocistack', 'cold');
    const b = get(scale, 'buildah', 'cold');
    if (o && b) add(`cold build+push <= 0.25x Buildah at ${scale}x`, median(o.ms) / median(b.ms), 0.25, 'x');
    const w = get(scale, 'ocistack layer writer', 'layer write');
    const p = get(scale, 'tar + pigz -6', 'layer write');
    if (w && p) add(`layer writing <= 1.5x tar + pigz -6 at ${scale}x`, median(w.ms) / median(p.ms), 1.5, 'x');
  }
  const rss10 = rows.filter((r) => r.scale === 10 && r.tool === 'ocistack');
  if (rss10.length) add('ocistack peak RSS <= 200 MB at 10x (max of its scenarios)', Math.max(...rss10.flatMap((r) => r.rssKiB)) * 1024 / 1e6, 200, ' MB', 0);
  return markdownTable(['target (issue 11)', 'measured', ''], out);
}

/** pigz is part of the comparison: install it (Debian) when missing. */
function ensurePigz(): void {
  if (spawnSync('sh', ['-c', 'command -v pigz']).status === 0) return;
  log('installing pigz (apt-get)...');
  const r = spawnSync('sh', ['-c', 'apt-get install -y -qq pigz || (apt-get update -qq && apt-get install -y -qq pigz)'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('pigz is missing and apt-get could not install it');
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  requireGnuTime();
  for (const t of ['buildah', 'skopeo', 'docker-registry', 'umoci', 'busybox']) requireTool(t);
  if (opts.only.has('layers')) ensurePigz();
  const loadBefore = loadAverages();
  const started = new Date().toISOString();
  log(`machine: ${machineLine()}; load before ${loadBefore}`);
  const root = makeTempDir('bench-devloop');
  const scratch = join(root, 'scratch');
  mkdirSync(scratch, { recursive: true });
  // Not "localhost": BuildKit (docker 20.10) talks plain HTTP to localhost
  // registries whatever their CA; a name in the test certificate that
  // resolves to 127.0.0.1 gets HTTPS with the CA from certs.d, and every tool
  // uses the same name.
  await ensureIdpHostsEntry();
  const reg = await startRegistry({ hostname: GITEA_HOST });
  let docker: Dockerd | undefined;
  const notes: string[] = [];
  let bench: Devloop | undefined;
  try {
    const base = await busyboxBase(reg);
    if (opts.only.has('docker')) {
      const why = ensureDockerInstalled(log);
      if (why) notes.push(`docker skipped: ${why}`);
      else {
        try {
          docker = await startDockerd(join(root, 'dockerd'), reg.host, reg.caFile);
          log(`dockerd ${docker.version} started (private data root under ${root})`);
        } catch (e) {
          notes.push(`docker skipped: dockerd could not start: ${(e as Error).message.slice(0, 1500)}`);
        }
      }
      if (notes.length) log(notes[notes.length - 1]!);
    }
    bench = new Devloop(opts, scratch, reg, docker);
    for (const scale of opts.scales) {
      const t0 = performance.now();
      const app = generateDevloopApp(join(root, 'contexts'), base, scale);
      log(`generated the ${scale}x app in ${sec(performance.now() - t0)} s`);
      await bench.scale(app);
      rmSync(app.dir, { recursive: true, force: true });
    }
    notes.push(...bench.notes);
  } finally {
    const versions = [
      `ocistack ${JSON.parse(readFileSync(join(BIN, '..', '..', 'package.json'), 'utf8')).version} (${version('git', ['-C', join(BIN, '..', '..'), 'rev-parse', '--short', 'HEAD'])})`,
      version('buildah', ['--version']),
      docker ? `dockerd ${docker.version} (client ${version(docker.docker, ['version', '--format', '{{.Client.Version}}'], docker.env)})` : 'docker: not run',
      version('tar', ['--version']),
      version('gzip', ['--version']),
      version('pigz', ['--version']),
      version('docker-registry', ['--version']),
    ];
    await docker?.stop();
    await reg.stop();
    unmountUnder(root);
    removeTempDir(root);
    if (bench) {
      const p = (s: string) => process.stdout.write(s + '\n');
      p(`\n# Development loop: ${opts.runs} run(s) per figure, median; started ${started}, ended ${new Date().toISOString()}`);
      p(`machine: ${machineLine()}; nproc ${cpus().length}; load average before ${loadBefore}, after ${loadAverages()}`);
      p(`versions: ${versions.join('; ')}; Buildah storage driver ${opts.buildahDriver}`);
      p('x buildah / x docker = ocistack / that tool (below 1: ocistack faster); same digest = unchanged rebuilds that pushed the same manifest digest as the build before\n');
      p(resultTable(bench.rows));
      if (bench.rows.some((r) => r.steps)) p('\nocistack per step (from its --progress json events):\n\n' + stepTable(bench.rows));
      if (bench.rows.some((r) => r.scenario === 'layer write')) p('\nLayer writing (node_modules -> tar.gz):\n\n' + layerTable(bench.rows));
      const targets = targetTable(bench.rows);
      if (targets.split('\n').length > 2) p('\n' + targets);
      for (const n of notes) p(`\nnote: ${n}`);
      if (opts.json) writeFileSync(opts.json, JSON.stringify({ options: { ...opts, only: [...opts.only] }, started, loadBefore, loadAfter: loadAverages(), versions, rows: bench.rows.map((r) => ({ ...r, steps: r.steps && Object.fromEntries(r.steps) })), notes }, null, 2));
    }
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
