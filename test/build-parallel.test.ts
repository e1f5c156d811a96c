/**
 * Parallel stages, proven without clocks: two independent stages whose RUNs
 * rendezvous through a shared cache mount (each writes its mark, then waits
 * for the other's) only succeed when they run at the same time, and fail
 * when stages are built one at a time (maxParallelStages 1). Also: a FROM
 * chain and COPY --from wait for exactly their stage (progress event
 * order), a failing stage aborts a sleeping RUN in another (the build fails
 * with the first error; no runc container or step dir is left), unused
 * stages are not built, and a parallel build's image digest and step ids
 * equal a sequential build's. Plus the CPU budget under two gzip streams.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { build } from '../lib/engine/build.js';
import { OcistackError } from '../lib/errors.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import { runcStateDir } from '../lib/executor/runc/step.js';
import { cpuBudget } from '../lib/cpu-budget.js';
import { ParallelGzip } from '../lib/layer/parallel-gzip.js';
import { StageScheduler } from '../lib/engine/stage-scheduler.js';
import { Semaphore } from '../lib/semaphore.js';
import { withRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase } from './helpers/images.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';

let reg: TestRegistry;
let base: string;

test.before(async () => {
  requireTool('runc');
  reg = await withRegistry('none');
  base = await busyboxBase(reg);
});

/** A RUN that creates /c/MINE in the shared cache mount, then waits (at most TRIES x 0.1 s) for /c/OTHER. */
const rendezvous = (mine: string, other: string) =>
  `RUN --mount=type=cache,id=x,target=/c,sharing=shared touch /c/${mine}; i=0; ` +
  `while [ ! -e /c/${other} ]; do i=$((i+1)); [ $i -gt $TRIES ] && { echo no ${other}; exit 7; }; sleep 0.1; done; echo ${mine} > /${mine}.txt`;

const RENDEZVOUS = `ARG BASE
FROM \${BASE} AS a
ARG TRIES
${rendezvous('a', 'b')}
FROM \${BASE} AS b
ARG TRIES
${rendezvous('b', 'a')}
FROM scratch
COPY --from=a /a.txt /a.txt
COPY --from=b /b.txt /b.txt
`;

function context(dockerfile: string): string {
  const ctx = makeTempDir('par');
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  return ctx;
}

function buildIn(ctx: string, extra: Partial<Parameters<typeof build>[0]> = {}) {
  return build({ context: ctx, cacheDir: join(ctx, 'cache'), registry: { caFile: reg.caFile }, buildArgs: { BASE: base }, env: { PATH: process.env.PATH }, ...extra });
}

test('two independent stages run at the same time (their RUNs meet through a shared cache mount)', async () => {
  const ctx = context(RENDEZVOUS);
  const r = await buildIn(ctx, { buildArgs: { BASE: base, TRIES: '200' }, maxParallelStages: 2 });
  assert.is(r.layers.length, 2);
});

test('the same Dockerfile fails when stages are built one at a time (the rendezvous test can fail)', async () => {
  const ctx = context(RENDEZVOUS);
  const e = await buildIn(ctx, { buildArgs: { BASE: base, TRIES: '10' }, maxParallelStages: 1 }).catch((x: unknown) => x);
  assert.instance(e, OcistackError);
  assert.is((e as OcistackError).code, 'RUN_FAILED');
});

test('FROM <stage> and COPY --from=<stage> wait for exactly that stage', async () => {
  const ctx = context(`ARG BASE
FROM \${BASE} AS one
RUN --mount=type=cache,id=w,target=/c,sharing=shared i=0; while [ ! -e /c/three ]; do i=$((i+1)); [ $i -gt 200 ] && exit 7; sleep 0.1; done; echo 1 > /one
FROM one AS two
RUN cat /one > /two-saw
FROM \${BASE} AS three
RUN --mount=type=cache,id=w,target=/c,sharing=shared echo three > /three; touch /c/three
COPY --from=two /two-saw /x
RUN test "$(cat /x)" = 1
FROM scratch
COPY --from=three /x /three /
`);
  const events: ProgressEvent[] = [];
  await buildIn(ctx, { onProgress: (e) => events.push(e) });
  const steps = events.filter((e): e is Extract<ProgressEvent, { type: 'step' }> => e.type === 'step');
  const at = (stage: string, what: string, status: string) => {
    const i = steps.findIndex((e) => e.stage === stage && e.name.includes(what) && e.status === status);
    assert.ok(i >= 0, `no ${status} event for ${stage} ${what}`);
    return i;
  };
  assert.ok(at('two', 'RUN cat', 'start') > at('one', 'echo 1 > /one', 'done'), 'FROM one waits for stage one');
  assert.ok(at('three', 'COPY --from=two', 'start') > at('two', 'RUN cat', 'done'), 'COPY --from=two starts once stage two is done');
  // Stage one finishes only after stage three's first RUN has begun (a rendezvous): three is independent until its COPY --from.
  assert.ok(at('three', 'echo three', 'start') < at('one', 'echo 1 > /one', 'done'), 'stage three started before one was done');
});

test('a failing stage aborts the other: its sleeping RUN is killed, the first error is the build error, nothing is left', async () => {
  const ctx = context(`ARG BASE
FROM \${BASE} AS slow
RUN --mount=type=cache,id=f,target=/c,sharing=shared touch /c/slow; sleep 600; echo never > /slow
FROM \${BASE} AS bad
RUN --mount=type=cache,id=f,target=/c,sharing=shared i=0; while [ ! -e /c/slow ]; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.1; done; exit 3
FROM scratch
COPY --from=slow /slow /slow
COPY --from=bad /etc/passwd /passwd
`);
  const events: ProgressEvent[] = [];
  const e = await buildIn(ctx, { onProgress: (ev) => events.push(ev) }).catch((x: unknown) => x);
  assert.instance(e, OcistackError);
  assert.is((e as OcistackError).code, 'RUN_FAILED', String(e));
  assert.match((e as OcistackError).message, /3/);
  const slowRun = events.filter((ev) => ev.type === 'step' && ev.stage === 'slow' && ev.name.includes('sleep 600'));
  assert.equal(slowRun.map((ev) => (ev as { status: string }).status), ['start', 'error'], 'the slow RUN started and was ended');
  const cacheDir = join(ctx, 'cache');
  const list = await run('runc', ['--root', runcStateDir(cacheDir), 'list', '-q']);
  assert.is(list.stdout.trim(), '', `containers left: ${list.stdout}`);
  const steps = join(cacheDir, 'runc', 'steps');
  assert.equal(existsSync(steps) ? readdirSync(steps) : [], [], 'no step dir left');
});

test('stages the target does not need are not built', async () => {
  const ctx = context(`ARG BASE
FROM \${BASE} AS unused
RUN exit 9
FROM \${BASE} AS used
RUN echo used > /used
FROM scratch
COPY --from=used /used /used
`);
  const events: ProgressEvent[] = [];
  await buildIn(ctx, { onProgress: (e) => events.push(e) });
  assert.ok(events.some((e) => e.type === 'step' && e.stage === 'used'));
  assert.not.ok(events.some((e) => e.type === 'step' && e.stage === 'unused'), 'no step of the unused stage ran');
});

test('a parallel build gives the digest and step ids of a sequential one', async () => {
  const dockerfile = `ARG BASE
FROM \${BASE} AS a
COPY a.bin /a.bin
RUN sha256sum /a.bin > /a.sum
FROM \${BASE} AS b
COPY b.bin /b.bin
RUN sha256sum /b.bin > /b.sum
FROM a AS c
COPY --from=b /b.sum /b.sum
RUN cat /a.sum /b.sum > /sums
FROM scratch
COPY --from=c /sums /sums
COPY --from=a /a.bin /a.bin
COPY --from=b /b.bin /b.bin
`;
  const digests: string[] = [];
  const ids: string[] = [];
  const payload = { a: randomBytes(3 << 20), b: Buffer.alloc(3 << 20, 'b') };
  for (const limit of [1, 4]) {
    const ctx = context(dockerfile);
    writeFileSync(join(ctx, 'a.bin'), payload.a);
    writeFileSync(join(ctx, 'b.bin'), payload.b);
    const r = await buildIn(ctx, { maxParallelStages: limit, sourceDateEpoch: 1700000000 });
    digests.push(r.manifestDigest);
    ids.push(r.steps.map((s) => `${s.id} ${s.name}`).sort().join('\n'));
  }
  assert.is(digests[1], digests[0]);
  assert.is(ids[1], ids[0]);
  assert.ok(ids[0]!.includes('[c] RUN cat /a.sum /b.sum > /sums'));
  assert.is(cpuBudget.inUse, 0, 'every CPU budget unit was given back');
});

test('two gzip streams at once share the CPU budget: never more than its capacity plus one forced block, all given back', async () => {
  const input = Buffer.concat([randomBytes(6 << 20), Buffer.alloc(6 << 20, 'x')]);
  let max = 0;
  const sample = setInterval(() => (max = Math.max(max, cpuBudget.inUse)), 1);
  const gz = (i: number) =>
    new Promise<Buffer>((resolve, reject) => {
      const s = new ParallelGzip();
      const out: Buffer[] = [];
      s.on('data', (c: Buffer) => {
        max = Math.max(max, cpuBudget.inUse);
        out.push(c);
      });
      s.on('end', () => resolve(Buffer.concat(out)));
      s.on('error', reject);
      for (let off = 0; off < input.length; off += 256 << 10) s.write(input.subarray(off, off + (256 << 10)));
      s.end();
      void i;
    });
  const [x, y] = await Promise.all([gz(0), gz(1)]);
  clearInterval(sample);
  assert.ok(gunzipSync(x!).equals(input));
  assert.ok(y!.equals(x!), 'the budget changes when blocks run, never the bytes');
  assert.ok(max >= 1, 'blocks took budget units');
  assert.ok(max <= cpuBudget.capacity + 1, `${max} units in use with capacity ${cpuBudget.capacity}`);
  assert.is(cpuBudget.inUse, 0);
});

test('a gzip stream makes progress while RUN processes hold the whole CPU budget (one block at a time)', async () => {
  // What two long RUNs on two cores look like to the budget.
  for (let i = 0; i < cpuBudget.capacity; i++) cpuBudget.force();
  try {
    const input = Buffer.alloc(5 << 20, 'y');
    const out: Buffer[] = [];
    let max = 0;
    await new Promise<void>((resolve, reject) => {
      const s = new ParallelGzip();
      s.on('data', (c: Buffer) => {
        max = Math.max(max, cpuBudget.inUse);
        out.push(c);
      });
      s.on('end', resolve);
      s.on('error', reject);
      for (let off = 0; off < input.length; off += 1 << 20) s.write(input.subarray(off, off + (1 << 20)));
      s.end();
    });
    assert.ok(gunzipSync(Buffer.concat(out)).equals(input));
    assert.ok(max <= cpuBudget.capacity + 1, `the stream took ${max - cpuBudget.capacity} units beyond the held ones; at most one`);
  } finally {
    for (let i = 0; i < cpuBudget.capacity; i++) cpuBudget.release();
  }
  assert.is(cpuBudget.inUse, 0);
});

/** A promise with its resolve, to order events without clocks. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('scheduler: at most `limit` stages at once, and all of them when independent', async () => {
  let running = 0;
  let max = 0;
  const gates = [0, 1, 2, 3].map(() => deferred());
  const started = [0, 1, 2, 3].map(() => deferred());
  const sch = new StageScheduler<number>({
    limit: 2,
    build: async (i) => {
      running++;
      max = Math.max(max, running);
      started[i]!.resolve();
      await gates[i]!.promise;
      running--;
      return i;
    },
  });
  const done = sch.run([0, 1, 2, 3]);
  await Promise.all([started[0]!.promise, started[1]!.promise]);
  assert.is(running, 2, 'two independent stages run together');
  gates[0]!.resolve();
  await started[2]!.promise;
  for (const g of gates) g.resolve();
  await done;
  assert.is(max, 2);
});

test('scheduler: a stage waiting for another gives its slot back (limit 1, dependent asked first: no deadlock)', async () => {
  const order: string[] = [];
  const sch: StageScheduler<string> = new StageScheduler<string>({
    limit: 1,
    build: async (i) => {
      order.push(`start ${i}`);
      if (i === 2) {
        // Two waits at once in one stage give back its one slot once.
        const [a, b] = await Promise.all([sch.need(0), sch.need(1)]);
        order.push(`2 got ${a}${b}`);
      }
      return String(i);
    },
  });
  await sch.run([2]);
  assert.equal(order, ['start 2', 'start 0', 'start 1', '2 got 01']);
  // The slot count is balanced: a second round still runs stages one at a time.
  const again = new StageScheduler<number>({ limit: 1, build: async (i) => i });
  await again.run([0, 1]);
});

test('scheduler: the first failure aborts the others and is reported after they settled', async () => {
  const cleaned: number[] = [];
  const bStarted = deferred();
  const sch: StageScheduler<number> = new StageScheduler<number>({
    limit: 3,
    build: async (i) => {
      if (i === 0) {
        await bStarted.promise;
        throw new Error('stage 0 broke');
      }
      bStarted.resolve();
      // Stage 1 runs until aborted, then cleans up over several turns before it settles.
      await new Promise<void>((resolve) => sch.signal.addEventListener('abort', () => resolve()));
      for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
      cleaned.push(i);
      throw new Error('stage 1 aborted');
    },
  });
  const e = await sch.run([0, 1]).catch((x: unknown) => x);
  assert.instance(e, Error);
  assert.is((e as Error).message, 'stage 0 broke', 'the first error, not the abort it caused');
  assert.ok(sch.signal.aborted);
  assert.equal(cleaned, [1], 'run() returned only after the aborted stage had settled');
});

test('semaphore: FIFO grants, force may exceed, an aborted wait takes nothing', async () => {
  const sem = new Semaphore(1);
  await sem.acquire();
  const ac = new AbortController();
  const aborted = sem.acquire(ac.signal).then(() => 'got', (e: unknown) => (e as OcistackError).code);
  const next = sem.acquire().then(() => 'next');
  ac.abort();
  assert.is(await aborted, 'ABORTED');
  sem.force();
  assert.is(sem.inUse, 2);
  sem.release();
  sem.release();
  assert.is(await next, 'next');
  assert.is(sem.inUse, 1);
  sem.release();
  assert.is(sem.inUse, 0);
});

test.run();
