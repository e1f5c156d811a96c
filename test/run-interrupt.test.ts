/**
 * Ctrl-C during a RUN, through the CLI: `node bin/ocistack.js build --push
 * --output type=oci,...` on a Dockerfile whose RUN prints a marker and then
 * sleeps, interrupted once the marker shows up in its `--progress json`
 * output (so the step's container is running), as root and as the rootless
 * user `ocistack-rootless` (helpers/rootless-cli.ts). Signals: SIGINT and
 * SIGTERM to the ocistack process (what `kill` does), and SIGINT to its
 * whole process group (what Ctrl-C in a terminal does: runc, the rootless
 * worker and the step's processes get it too). After each:
 *  - exit code 130 (SIGINT) or 143 (SIGTERM);
 *  - nothing written: no OCI output dir, no digest file, the tag not in the
 *    registry;
 *  - no runc container in `runc --root <cacheDir>/runc/state list`;
 *  - no mount below the cache dir (/proc/self/mountinfo; a rootless step's
 *    mounts live in its worker's namespace, which is gone with its last
 *    process, checked next);
 *  - no process left: none whose argv holds the RUN's unique marker (the
 *    step's shell), none running its unique `sleep N`, none whose argv or
 *    environment names the cache dir (runc, the rootless worker);
 *  - no step dir in <cacheDir>/runc/steps, no snapshot being made in
 *    <cacheDir>/snapshots/tmp, no lock, lock claim or temp file anywhere in
 *    the cache dir.
 * At the end the same Dockerfile without the sleep builds, as a check that
 * the cache the interruptions left is usable.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { ProgressEvent } from '../lib/progress/events.js';
import { mountPoints } from '../lib/executor/runc/overlay.js';
import { BIN, REPO_ROOT } from './helpers/cli.js';
import { busyboxBase } from './helpers/images.js';
import { skopeoInspectArgs, startRegistry, type TestRegistry } from './helpers/registry.js';
import { giveToUser, rootlessWork, spawnOcistackAsUser, type RootlessWork } from './helpers/rootless-cli.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';

let reg: TestRegistry;
let base: string;
let rootless: RootlessWork;
const runc = requireTool('runc');

test.before(async () => {
  requireTool('newuidmap');
  reg = await startRegistry({ auth: 'none' });
  base = await busyboxBase(reg);
  rootless = rootlessWork('run-interrupt-rootless');
});

test.after(async () => {
  await reg?.stop();
});

interface Setup {
  /** Where the build runs: its context, outputs, cache dir. */
  dir: string;
  cacheDir: string;
  context: string;
  ca: string;
  spawn: (args: string[]) => ChildProcess;
}

let rootDir: string | undefined;

/** Root's builds share one work and cache dir, as the rootless user's do: each interruption starts from what the last one left. */
function rootSetup(): Setup {
  rootDir ??= makeTempDir('run-interrupt');
  const dir = rootDir;
  const cacheDir = join(dir, 'cache');
  const context = join(dir, `ctx-${randomBytes(3).toString('hex')}`);
  fs.mkdirSync(context);
  return {
    dir, cacheDir, context, ca: reg.caFile,
    // detached: its own process group, so the group can be signalled as a terminal would.
    spawn: (args) => spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, OCISTACK_CACHE_DIR: cacheDir }, stdio: ['ignore', 'pipe', 'pipe'], detached: true }),
  };
}

function rootlessSetup(): Setup {
  const w = rootless;
  const context = join(w.dir, `ctx-${randomBytes(3).toString('hex')}`);
  fs.mkdirSync(context);
  fs.chownSync(context, w.user.uid, w.user.gid);
  return { dir: w.dir, cacheDir: w.cacheDir, context, ca: giveToUser(w, reg.caFile, 'ca.pem'), spawn: (args) => spawnOcistackAsUser(w, args, { detached: true }) };
}

interface Interrupted {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  sent: boolean;
  marker: string;
  sleepArg: string;
  out: string;
  digestFile: string;
  ref: string;
}

/**
 * Build a Dockerfile whose RUN echoes a unique marker and sleeps `sleep N`
 * (N unique too); send `sig` (to the group with `group`) when the marker
 * appears in the step's output.
 */
function buildAndInterrupt(s: Setup, name: string, sig: NodeJS.Signals, group = false): Promise<Interrupted> {
  const marker = `ocistack-interrupt-${randomBytes(6).toString('hex')}`;
  const sleepArg = String(100_000 + Math.floor(Math.random() * 800_000));
  fs.writeFileSync(join(s.context, 'Dockerfile'), `FROM ${base}\nRUN echo made > /before\nRUN echo ${marker}; sleep ${sleepArg}; echo never\n`);
  const out = join(s.dir, `out-${name}`);
  const digestFile = join(s.dir, `digest-${name}`);
  const ref = `${reg.host}/giteaadmin/interrupt:${name}`;
  const child = s.spawn([
    'build', s.context, '-t', ref, '--push', '--ca-file', s.ca, '--cache-dir', s.cacheDir,
    '--output', `type=oci,dest=${out}`, '--digest-file', digestFile, '--progress', 'json',
  ]);
  return new Promise((resolve, reject) => {
    let stderr = '';
    let partial = '';
    let sent = false;
    const guard = setTimeout(() => (group ? process.kill(-child.pid!, 'SIGKILL') : child.kill('SIGKILL')), 120_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (sent || !line.startsWith('{')) continue;
        let e: ProgressEvent;
        try {
          e = JSON.parse(line) as ProgressEvent;
        } catch {
          continue;
        }
        if (e.type === 'output' && e.line.includes(marker)) {
          sent = true;
          if (group) process.kill(-child.pid!, sig);
          else child.kill(sig);
        }
      }
    });
    child.stdout!.resume();
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr, sent, marker, sleepArg, out, digestFile, ref });
    });
  });
}

/** Processes (pid: argv) whose argv holds the marker or runs `sleep N`, or whose argv or environment names the cache dir. */
function leftoverProcesses(r: Interrupted, cacheDir: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let argv = '';
    let environ = '';
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      environ = fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      // gone meanwhile, or a kernel thread
    }
    const words = argv.split('\0');
    if (argv.includes(r.marker) || (words.includes('sleep') && words.includes(r.sleepArg)) || argv.includes(cacheDir) || environ.includes(cacheDir)) {
      found.push(`${pid}: ${words.join(' ').trim()}`);
    }
  }
  return found;
}

/** Every path below `dir` (relative), for the leftovers check. */
function walk(dir: string, rel = ''): string[] {
  const abs = join(dir, rel);
  if (!fs.existsSync(abs)) return [];
  const out: string[] = [];
  for (const n of fs.readdirSync(abs)) {
    const r = rel ? `${rel}/${n}` : n;
    out.push(r);
    const st = fs.lstatSync(join(dir, r));
    // Snapshots' rootfs trees and blobs are content, not leftovers: do not descend.
    if (st.isDirectory() && !/^snapshots\/[^/]+\/rootfs$/.test(r) && r !== 'blobs') out.push(...walk(dir, r));
  }
  return out;
}

/** Leftovers in the cache dir: step dirs, snapshots being made, locks and their claims, temp files. */
function cacheLeftovers(cacheDir: string): string[] {
  return walk(cacheDir).filter(
    (r) =>
      /^runc\/steps\/./.test(r) ||
      /^snapshots\/tmp\/./.test(r) ||
      /^tmp\/./.test(r) ||
      /\.lock($|\.)|\.break-|\.tmp-|\.tmp$/.test(r.split('/').pop()!),
  );
}

async function runcContainers(cacheDir: string): Promise<string[]> {
  const state = join(cacheDir, 'runc', 'state');
  if (!fs.existsSync(state)) return [];
  const l = await run(runc, ['--root', state, 'list', '-q']);
  assert.is(l.code, 0, l.stderr);
  return l.stdout.split('\n').filter(Boolean);
}

async function assertClean(s: Setup, r: Interrupted, code: number): Promise<void> {
  assert.ok(r.sent, `the build ended before its RUN printed the marker:\n${r.stderr.slice(-3000)}`);
  assert.is(r.code, code, `exit code (signal ${r.signal}):\n${r.stderr.slice(-3000)}`);
  // Every check, then one failure listing all that leaked.
  const problems: string[] = [];
  const check = (what: string, found: string[]) => found.length && problems.push(`${what}:\n  ${found.join('\n  ')}`);
  check('an interrupted build wrote', [r.out, r.digestFile].filter((f) => fs.existsSync(f)));
  const ins = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${r.ref}`]);
  check('pushed', ins.code === 0 ? [r.ref] : []);
  check('runc containers left', await runcContainers(s.cacheDir));
  check('mounts left below the cache dir', mountPoints().filter((m) => m.startsWith(s.cacheDir)));
  check('processes left (the RUN, runc or the rootless worker)', leftoverProcesses(r, s.cacheDir));
  check('step dirs, locks or temp files left in the cache dir', cacheLeftovers(s.cacheDir));
  if (problems.length) assert.unreachable(`${problems.join('\n')}\n--- stderr:\n${r.stderr.slice(-1500)}`);
}

for (const [mode, setup] of [['root', rootSetup], ['rootless', rootlessSetup]] as const) {
  test(`${mode}: SIGINT during a RUN: exit 130, nothing written or left`, async () => {
    const s = setup();
    await assertClean(s, await buildAndInterrupt(s, `${mode}-int`, 'SIGINT'), 130);
  });

  test(`${mode}: SIGTERM during a RUN: exit 143, nothing written or left`, async () => {
    const s = setup();
    await assertClean(s, await buildAndInterrupt(s, `${mode}-term`, 'SIGTERM'), 143);
  });

  test(`${mode}: Ctrl-C (SIGINT to the process group) during a RUN: exit 130, nothing written or left`, async () => {
    const s = setup();
    await assertClean(s, await buildAndInterrupt(s, `${mode}-group`, 'SIGINT', true), 130);
  });
}

test('after the interruptions the cache dirs build the same Dockerfile without the sleep', async () => {
  for (const s of [rootSetup(), rootlessSetup()]) {
    fs.writeFileSync(join(s.context, 'Dockerfile'), `FROM ${base}\nRUN echo made > /before\nRUN echo done\n`);
    const out = join(s.dir, `out-final-${randomBytes(3).toString('hex')}`);
    const child = s.spawn(['build', s.context, '--ca-file', s.ca, '--cache-dir', s.cacheDir, '--output', `type=oci,dest=${out}`, '--progress', 'plain']);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.resume();
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.is(code, 0, err.slice(-3000));
    assert.ok(fs.existsSync(join(out, 'index.json')));
    assert.equal(cacheLeftovers(s.cacheDir), []);
  }
});

test.run();
