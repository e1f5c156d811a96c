/**
 * RUN processes count against the CPU budget (lib/cpu-budget.ts) in root
 * mode and rootless alike: two steps run at once through the runc executor
 * in a child process (helpers/run-budget-child.ts), as root (steps in the
 * process) and as the rootless test user `ocistack-rootless`
 * (helpers/rootless-user.ts; steps in a worker process in a user
 * namespace). The steps meet through a shared cache mount, as in
 * build-parallel.test.ts's rendezvous, so when both have printed `met` both
 * processes are running: the child's budget must then hold one unit for
 * each (2), and none after. And a step writing a 6 MiB file: its layer's
 * compression takes a unit of the child's budget per block. Without the
 * worker forwarding its budget to its parent (worker-cpu.ts), the rootless
 * counts are 0.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chownTree } from './helpers/rootless-cli.js';
import { ensureRootlessUser, rootlessReachableTempDir } from './helpers/rootless-user.js';
import { busyboxChain } from './helpers/run-steps.js';
import { requireTool } from './helpers/tools.js';

const runc = requireTool('runc');
let job: { runc: string; storeRoot: string; layers: unknown[]; diffIds: unknown[] };
let base: string;
let user: { uid: number; gid: number };

test.before(async () => {
  requireTool('newuidmap');
  requireTool('unshare');
  user = ensureRootlessUser();
  base = rootlessReachableTempDir('run-budget');
  const chain = await busyboxChain(join(base, 'store'));
  chownTree(base, user.uid, user.gid);
  job = { runc, storeRoot: chain.store.root, layers: chain.layers, diffIds: chain.diffIds };
});

interface Report {
  capacity?: number;
  atMeet?: number;
  after?: number;
  takes?: number;
  results?: { exitCode: number; layerSize?: number }[];
  error?: string;
}

function twoSteps(asUser: boolean, extra: { n?: number; layerMiB?: number; tag?: string } = {}): Promise<Report> {
  const cacheDir = join(base, `cache-${asUser ? 'rootless' : 'root'}${extra.tag ? `-${extra.tag}` : ''}`);
  fs.mkdirSync(cacheDir);
  if (asUser) fs.chownSync(cacheDir, user.uid, user.gid);
  const child = spawn(process.execPath, [fileURLToPath(new URL('./helpers/run-budget-child.js', import.meta.url)), JSON.stringify({ ...job, cacheDir, n: extra.n ?? 2, layerMiB: extra.layerMiB })], {
    ...(asUser ? { uid: user.uid, gid: user.gid } : {}),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', OCISTACK_CPU_BUDGET: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  child.stderr.on('data', (b: Buffer) => (err += b));
  return new Promise((resolve, reject) =>
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Report);
      } catch {
        reject(new Error(`the child exited ${code} without a report:\n${out}\n${err}`));
      }
    }),
  );
}

for (const [mode, asUser] of [['root', false], ['rootless', true]] as const) {
  test(`${mode}: two RUN processes running at once hold two CPU budget units, none after`, async () => {
    const r = await twoSteps(asUser);
    assert.not.ok(r.error, r.error);
    assert.equal(r.results!.map((x) => x.exitCode), [0, 0]);
    assert.is(r.capacity, 2);
    assert.is(r.atMeet, 2, `budget units in use while both RUN processes ran (${mode})`);
    assert.is(r.after, 0, 'every unit given back');
  });
}

for (const [mode, asUser] of [['root', false], ['rootless', true]] as const) {
  test(`${mode}: the layer a RUN writes is compressed on the build process's budget (one unit a block), all given back`, async () => {
    const r = await twoSteps(asUser, { n: 1, layerMiB: 6, tag: 'layer' });
    assert.not.ok(r.error, r.error);
    assert.is(r.results![0]!.exitCode, 0);
    assert.ok(r.results![0]!.layerSize! > 6 << 20, 'the file is in the layer');
    // 1 for the RUN process, then at least one per 1 MiB block of the 6 MiB file.
    assert.ok(r.takes! >= 7, `${r.takes} units taken from the build process's budget (${mode})`);
    assert.is(r.after, 0);
  });
}

test.run();
