/**
 * `cache prune` next to a build that starts, deterministically: prune is
 * held at its test seam (PruneOptions.beforeDelete: after its last check for
 * running builds, before its first deletion) while a real CLI build starts
 * into the same cache dir. Without the prune lock (lib/cache/active-builds.ts)
 * the build marks itself unseen, reaches its RUN, prune deletes the base
 * image's blobs and snapshots under it and the build fails writing its
 * output with a missing blob; with it, the build waits for the lock and runs
 * after prune, and both succeed. The RUN waits at a gate (a file the test
 * creates in its shared cache mount), so nothing depends on timing.
 * Also: prune next to a build in its RUN keeps the snapshot the RUN uses;
 * a prune killed with -9 holding the lock does not stop builds or prunes;
 * `ocistack cache prune --all` and a CLI build at the same time, a few rounds.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pruneCache, type PruneResult } from '../lib/cache/prune.js';
import { pruneLockPath } from '../lib/cache/active-builds.js';
import { withRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase } from './helpers/images.js';
import { BIN, ocistack } from './helpers/cli.js';
import { makeTempDir, requireTool } from './helpers/tools.js';

let reg: TestRegistry;
let base: string;

test.before(async () => {
  requireTool('runc');
  reg = await withRegistry('none');
  base = await busyboxBase(reg);
});

/** A RUN that says it started (a file in its shared cache mount), then waits for the test's `go` there. */
const GATED = `ARG BASE
FROM \${BASE}
RUN --mount=type=cache,id=gate,target=/g,sharing=shared touch /g/started; i=0; while [ ! -e /g/go ]; do i=$((i+1)); [ $i -gt 1200 ] && exit 7; sleep 0.1; done; echo ran > /ran.txt
`;

function context(dockerfile: string): string {
  const ctx = makeTempDir('prune-race');
  writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile);
  return ctx;
}

interface Running {
  child: ChildProcess;
  exited: Promise<number>;
  stderr: () => string;
}

function startBuild(ctx: string, cache: string, extra: string[] = []): Running {
  const child = spawn(process.execPath, [BIN, 'build', ctx, '--cache-dir', cache, '--ca-file', reg.caFile, '--build-arg', `BASE=${base}`, '--progress', 'plain', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return { child, exited, stderr: () => stderr };
}

async function waitFor(what: string, cond: () => boolean, b?: Running): Promise<void> {
  const deadline = Date.now() + 120_000;
  let done = false;
  void b?.exited.then(() => (done = true));
  while (!cond()) {
    if (done) throw new Error(`the build exited before ${what}:\n${b!.stderr()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${b ? `:\n${b.stderr()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ls = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).sort() : []);
/** The gate's cache mount dir, once the RUN made it. */
const gateDir = (cache: string): string | undefined => ls(path.join(cache, 'cache-mounts')).map((n) => path.join(cache, 'cache-mounts', n)).find((d) => existsSync(path.join(d, 'started')));
/** A process other than this one is waiting for the prune lock (lib/lock.ts writes its record to a temp beside it first). */
const waitingForLock = (cache: string): boolean =>
  ls(path.dirname(pruneLockPath(cache))).some((n) => n.startsWith(`${path.basename(pruneLockPath(cache))}.tmp-`) && !n.includes(`-${process.pid}-`));

/** Fill `cache` with a pulled base, its snapshots and records (a finished build with a RUN). */
async function primed(): Promise<string> {
  const cache = makeTempDir('prune-race-cache');
  const r = await ocistack(['build', context(`ARG BASE\nFROM \${BASE}\nRUN echo primed > /p\n`), '--cache-dir', cache, '--ca-file', reg.caFile, '--build-arg', `BASE=${base}`, '--progress', 'plain']);
  assert.is(r.code, 0, r.stderr);
  assert.ok(ls(path.join(cache, 'snapshots', 'layers')).length > 0, 'the primed build made layer snapshots');
  return cache;
}

test('a build that starts while prune is between its check and its deletions waits for it; both succeed', async () => {
  const cache = await primed();
  const out = path.join(makeTempDir('prune-race-out'), 'image.tar');
  let b: Running | undefined;
  let sawWaiting = false;
  const pr: PruneResult = await pruneCache({
    cacheDir: cache,
    all: true,
    beforeDelete: async () => {
      b = startBuild(context(GATED), cache, ['--output', `type=oci,dest=${out}`]);
      // Either the build waits for the lock (the fix) or it got past its marker into the RUN unseen.
      await waitFor('the build to wait for the prune lock or reach its RUN', () => waitingForLock(cache) || gateDir(cache) !== undefined, b);
      sawWaiting = waitingForLock(cache);
    },
  });
  assert.ok(b, 'the seam ran');
  assert.is(pr.runningBuilds, 0, 'no build was running when prune checked');
  assert.ok(pr.blobs > 0 && pr.snapshots > 0, `prune removed the base's blobs and snapshots (${pr.blobs} blobs, ${pr.snapshots} snapshots)`);
  await waitFor('the RUN to start', () => gateDir(cache) !== undefined, b);
  writeFileSync(path.join(gateDir(cache)!, 'go'), '');
  const code = await b!.exited;
  assert.is(code, 0, `the build failed:\n${b!.stderr()}`);
  assert.ok(sawWaiting, 'the build waited for the prune lock while prune was deleting');
  assert.ok(existsSync(out), 'the output was written');
  assert.not.ok(existsSync(pruneLockPath(cache)), 'the prune lock was released');
});

test('prune next to a build in its RUN keeps every blob and snapshot (the one the RUN uses too); the build succeeds', async () => {
  const cache = await primed();
  const b = startBuild(context(GATED), cache);
  await waitFor('the RUN to start', () => gateDir(cache) !== undefined, b);
  const snaps = ls(path.join(cache, 'snapshots', 'layers'));
  const blobs = ls(path.join(cache, 'blobs', 'sha256'));
  const pr = await pruneCache({ cacheDir: cache, all: true });
  assert.ok(pr.runningBuilds >= 1, 'the running build was seen');
  assert.is(pr.blobs + pr.snapshots + pr.cacheMounts, 0);
  assert.equal(ls(path.join(cache, 'snapshots', 'layers')), snaps, 'snapshots kept');
  for (const d of blobs) assert.ok(existsSync(path.join(cache, 'blobs', 'sha256', d)), `blob ${d} kept`);
  writeFileSync(path.join(gateDir(cache)!, 'go'), '');
  assert.is(await b.exited, 0, b.stderr());
});

test('a prune killed with -9 while holding the prune lock: the next build and prune recover it', async () => {
  const cache = await primed();
  const LIB = (m: string): string => fileURLToPath(new URL(`../lib/${m}`, import.meta.url));
  const code = `const { lockForPrune } = await import(${JSON.stringify(LIB('cache/active-builds.js'))}); await lockForPrune(${JSON.stringify(cache)}); process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`;
  const holder = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    holder.on('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
  assert.ok(existsSync(pruneLockPath(cache)));
  await new Promise<void>((resolve) => {
    holder.removeAllListeners('exit');
    holder.on('exit', () => resolve());
    holder.kill('SIGKILL');
  });
  assert.ok(existsSync(pruneLockPath(cache)), 'the killed holder left its lock');
  const r = await ocistack(['build', context(`ARG BASE\nFROM \${BASE}\nRUN echo after > /a\n`), '--cache-dir', cache, '--ca-file', reg.caFile, '--build-arg', `BASE=${base}`, '--progress', 'plain']);
  assert.is(r.code, 0, r.stderr);
  const p = await ocistack(['cache', 'prune', '--all', '--cache-dir', cache]);
  assert.is(p.code, 0, p.stderr);
  assert.not.ok(existsSync(pruneLockPath(cache)));
});

test('`ocistack cache prune --all` at the same time as a CLI build, 3 rounds: both succeed every time', async () => {
  const cache = await primed();
  const ctx = context(`ARG BASE\nFROM \${BASE}\nARG N\nRUN echo $N > /n\nRUN cat /n > /m\n`);
  for (let i = 0; i < 3; i++) {
    const out = path.join(makeTempDir('prune-race-out'), 'image.tar');
    const b = startBuild(ctx, cache, ['--build-arg', `N=${i}`, '--output', `type=oci,dest=${out}`]);
    const p = await ocistack(['cache', 'prune', '--all', '--cache-dir', cache]);
    assert.is(p.code, 0, p.stderr);
    assert.is(await b.exited, 0, `round ${i}: ${b.stderr()}`);
    assert.ok(existsSync(out));
  }
});

test('prune of a cache dir that does not exist removes nothing and does not create it (nor its lock)', async () => {
  const cache = path.join(makeTempDir('prune-none'), 'absent');
  const r = await pruneCache({ cacheDir: cache });
  assert.is(r.blobs + r.records + r.snapshots, 0);
  assert.not.ok(existsSync(cache));
});

test.run();
