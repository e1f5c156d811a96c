/**
 * Timing and memory helpers shared by the benchmarks (bench/build.ts,
 * bench/devloop.ts): a child process under GNU time (wall time measured
 * here, peak RSS from time's %M), medians, and the machine's load, so every
 * benchmark measures the same way.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';

export interface Measured {
  ms: number;
  rssKiB: number;
}

export interface MeasureOptions {
  /** Run as this user (rootless ocistack); the RSS file then goes to `rssDir`, which the user can write. */
  as?: { uid: number; gid: number; env: NodeJS.ProcessEnv; rssDir: string };
  /** Environment of the command (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Working directory of the command. */
  cwd?: string;
  /** Every line of the command's stdout and stderr, with the ms since its start when it arrived. */
  onLine?: (line: string, ms: number) => void;
}

/** Run `cmd` under GNU time; wall time from here, peak RSS from time's %M. Throws on a non-zero exit. */
export function measure(cmd: string, args: string[], scratch: string, opts: MeasureOptions = {}): Promise<Measured> {
  const rssFile = join(opts.as?.rssDir ?? scratch, `rss-${process.hrtime.bigint()}`);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      ...(opts.env && !opts.as ? { env: opts.env } : {}),
      ...(opts.as ? { uid: opts.as.uid, gid: opts.as.gid, env: opts.as.env } : {}),
    });
    let err = '';
    const lines = (stream: NodeJS.ReadableStream, keep: boolean): void => {
      let partial = '';
      stream.on('data', (d: Buffer) => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (keep) err = (err + d).slice(-8000);
        if (!opts.onLine) return;
        partial += d;
        const ls = partial.split('\n');
        partial = ls.pop()!;
        for (const l of ls) opts.onLine(l, ms);
      });
    };
    lines(c.stdout, false);
    lines(c.stderr, true);
    c.on('error', reject);
    c.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${err.slice(-4000)}`));
      const rssKiB = Number.parseInt(readFileSync(rssFile, 'utf8').trim().split('\n').pop()!, 10);
      rmSync(rssFile, { force: true });
      resolve({ ms, rssKiB });
    });
  });
}

/** Fails early with the package to install when GNU time is missing. */
export function requireGnuTime(): void {
  if (spawnSync('/usr/bin/time', ['-f', '%M', 'true']).status !== 0) throw new Error('/usr/bin/time is missing: apt-get install -y time');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function sec(ms: number): string {
  return (ms / 1000).toFixed(2);
}

/** The 1-minute load average: other work on the machine shows up in the times, so each run line says how busy it was. */
export function load(): string {
  return ` (load ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores)`;
}

/** All three load averages, for the machine lines before and after a benchmark. */
export function loadAverages(): string {
  return loadavg().map((l) => l.toFixed(2)).join(' ');
}

/** One line about the machine: cores, CPU model, RAM, kernel, Node. */
export function machineLine(): string {
  return `${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, kernel ${release()}, node ${process.version}`;
}

/** Progress goes to stderr; the result tables to stdout. */
export function log(s: string): void {
  process.stderr.write(s + '\n');
}

/** A markdown table with padded columns. */
export function markdownTable(head: string[], rows: string[][]): string {
  const lines = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (l: string[]) => '| ' + l.map((c, i) => (c ?? '').padEnd(widths[i]!)).join(' | ') + ' |';
  return [fmt(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(fmt)].join('\n');
}

/** One finished step of ocistack's `--progress json` output: start to `done` or `cached`. */
export interface StepTime {
  name: string;
  ms: number;
  cached: boolean;
}

/**
 * Step times from ocistack's `--progress json` lines as they arrive (by step
 * id, start to done or cached); `onStep` gets each finished step. Other
 * lines (and steps that failed) are ignored.
 */
export function ocistackStepTimes(onStep: (step: StepTime) => void): (line: string, ms: number) => void {
  const started = new Map<string, { name: string; ms: number }>();
  return (line, ms) => {
    if (!line.startsWith('{')) return;
    let e: { type?: string; id?: string; name?: string; status?: string };
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    if (e.type !== 'step' || !e.id) return;
    if (e.status === 'start') started.set(e.id, { name: e.name ?? e.id, ms });
    else if ((e.status === 'done' || e.status === 'cached') && started.has(e.id)) {
      const s = started.get(e.id)!;
      onStep({ name: s.name, ms: ms - s.ms, cached: e.status === 'cached' });
    }
  };
}
