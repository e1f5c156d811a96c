/**
 * The runc executor rootless: the test (root) creates the user
 * `ocistack-rootless` with a subordinate id range (helpers/rootless-user.ts)
 * and runs each step in a child node process as that user
 * (helpers/runc-rootless-child.ts), against a busybox chain in a store the
 * user owns. Owners in the layer are the ids inside the image (0, 1000),
 * not the host's subordinate ids; deletions and replaced directories work
 * as in root mode (overlay with userxattr); nothing is left behind.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobStore } from '../lib/image/store.js';
import type { Descriptor, Digest } from '../lib/image/types.js';
import { indexLayer, type IndexedEntry } from '../lib/layer/index.js';
import type { LayerResult } from '../lib/layer/types.js';
import { runcStepsDir } from '../lib/executor/runc/index.js';
import { layerSnapshotsRoot } from '../lib/rootfs/index.js';
import { mountPoints } from '../lib/executor/runc/overlay.js';
import { APP_USER } from './helpers/images.js';
import { ensureRootlessUser, ROOTLESS_RANGE, rootlessReachableTempDir } from './helpers/rootless-user.js';
import { chownTree } from './helpers/rootless-cli.js';
import { busyboxChain } from './helpers/run-steps.js';
import { requireTool, runOk } from './helpers/tools.js';
import { openContext } from '../lib/context/index.js';
import { contextMountSource } from '../lib/engine/run-mount-source.js';
import { packSshAdd, startTestAgent } from './helpers/ssh-agent.js';

let store: BlobStore;
let layers: Descriptor[];
let diffIds: Digest[];
let cacheDir: string;
let baseDir: string;
let user: { name: string; uid: number; gid: number };
const runc = requireTool('runc');

test.before(async () => {
  requireTool('newuidmap');
  requireTool('unshare');
  user = ensureRootlessUser();
  const base = rootlessReachableTempDir('runc-rootless');
  ({ store, layers, diffIds } = await busyboxChain(join(base, 'store')));
  cacheDir = join(base, 'cache');
  fs.mkdirSync(cacheDir);
  baseDir = base;
  chownTree(base, user.uid, user.gid);
});

interface ChildOut {
  result?: { exitCode: number; layer?: LayerResult };
  error?: { code: string; message: string; hint?: string; location?: unknown };
  stdout: string;
  stderr: string;
}

function asUser(uid: number, gid: number, job: Record<string, unknown>): Promise<ChildOut> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./helpers/runc-rootless-child.js', import.meta.url)), JSON.stringify({ runc, storeRoot: store.root, layers, diffIds, cacheDir, ...job })], {
    uid,
    gid,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  child.stderr.on('data', (b: Buffer) => (err += b));
  return new Promise((resolve, reject) =>
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as ChildOut);
      } catch {
        reject(new Error(`the child exited ${code} without a result:\n${out}\n${err}`));
      }
    }),
  );
}

const step = (script: string, extra: Record<string, unknown> = {}) => asUser(user.uid, user.gid, { args: ['/bin/sh', '-c', script], ...extra });

async function entries(layer: LayerResult | undefined): Promise<Map<string, IndexedEntry>> {
  assert.ok(layer, 'a layer');
  const idx = await indexLayer(store, layer!.digest);
  return new Map(idx.entries.map((e) => [e.type === 'opaque' ? `${e.path}/.wh..wh..opq` : e.type === 'whiteout' ? `wh:${e.path}` : e.path, e]));
}

function assertNothingLeft(): void {
  assert.equal(mountPoints().filter((m) => m.startsWith(cacheDir)), [], 'no mount');
  const steps = fs.existsSync(runcStepsDir(cacheDir)) ? fs.readdirSync(runcStepsDir(cacheDir)) : [];
  assert.equal(steps, [], 'no step dir');
}

test('as root in the namespace: a file, a whiteout, owners as in the image', async () => {
  const r = await step('id -u; echo hi > /x; rm /bin/ls; touch /tmp/app && chown 1000:1000 /tmp/app');
  assert.ok(r.result, JSON.stringify(r));
  assert.is(r.result!.exitCode, 0, r.stderr);
  assert.is(r.stdout, '0\n');
  const e = await entries(r.result!.layer);
  assert.equal([...e.keys()].sort(), ['/bin', '/tmp', '/tmp/app', '/x', 'wh:/bin/ls']);
  assert.is(e.get('/x')!.uid, 0);
  assert.is(e.get('/tmp/app')!.uid, 1000);
  assert.is(e.get('/tmp/app')!.gid, 1000);
  assert.is(await runOk('tar', ['-xzOf', store.path(r.result!.layer!.digest), 'x']), 'hi\n');
  assertNothingLeft();
});

test('the snapshot keeps real owners: /home/app is 1000 inside, subuid start + 1000 on the host', async () => {
  const r = await step('stat -c %u:%g /home/app');
  assert.is(r.result?.exitCode, 0, JSON.stringify(r));
  assert.is(r.stdout, '1000:1000\n');
  const snaps = fs.readdirSync(layerSnapshotsRoot(cacheDir));
  assert.equal(snaps.length, 1, 'one layer snapshot: busybox has one layer');
  assert.match(snaps[0]!, /^[0-9a-f]{64}\.userns-[0-9a-f]{8}$/, 'keyed apart from root\'s snapshots');
  const st = fs.statSync(join(layerSnapshotsRoot(cacheDir), snaps[0]!, 'fs', 'home', 'app'));
  assert.is(st.uid, ROOTLESS_RANGE.start + APP_USER.uid - 1);
});

test('consecutive RUNs extend the layer snapshots in the namespace: the second applies only the first one\'s layer', async () => {
  const r1 = await step('echo 1 > /f1; rm /bin/ls; rm -rf /home && mkdir /home && echo h > /home/h');
  assert.is(r1.result?.exitCode, 0, JSON.stringify(r1));
  const layer = r1.result!.layer!;
  const before = new Map(fs.readdirSync(layerSnapshotsRoot(cacheDir)).map((n) => [n, fs.statSync(join(layerSnapshotsRoot(cacheDir), n)).ino]));
  const r2 = await step('cat /f1; ls /bin/ls 2>/dev/null || echo gone; ls -A /home', {
    layers: [...layers, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    diffIds: [...diffIds, layer.diffId],
  });
  assert.is(r2.result?.exitCode, 0, JSON.stringify(r2));
  assert.is(r2.stdout, '1\ngone\nh\n', 'file, whiteout and opaque dir of the first RUN (user.overlay.opaque)');
  const after = fs.readdirSync(layerSnapshotsRoot(cacheDir));
  assert.is(after.length, before.size + 1, 'one snapshot more: the first RUN\'s layer');
  for (const [n, ino] of before) assert.is(fs.statSync(join(layerSnapshotsRoot(cacheDir), n)).ino, ino, `${n} reused`);
  assertNothingLeft();
});

test('USER app: files owned by 1000 in the layer', async () => {
  const r = await step('id -u; touch /tmp/mine', { user: APP_USER.name });
  assert.is(r.result?.exitCode, 0, JSON.stringify(r));
  assert.is(r.stdout, `${APP_USER.uid}\n`);
  const e = await entries(r.result!.layer);
  assert.is(e.get('/tmp/mine')!.uid, APP_USER.uid);
  assert.is(e.get('/tmp/mine')!.gid, APP_USER.gid);
});

test('rm -rf then mkdir: an opaque directory (user.overlay.opaque)', async () => {
  const r = await step('rm -rf /home && mkdir /home && echo a > /home/a');
  assert.is(r.result?.exitCode, 0, JSON.stringify(r));
  const e = await entries(r.result!.layer);
  assert.equal([...e.keys()].sort(), ['/home', '/home/.wh..wh..opq', '/home/a']);
  for (const x of e.values()) for (const k of Object.keys(x.xattrs ?? {})) assert.not.ok(k.includes('overlay'), k);
});

test('a failing command: its exit code, no layer; network none: loopback only', async () => {
  const r = await step('echo nope >&2; exit 3');
  assert.is(r.result?.exitCode, 3, JSON.stringify(r));
  assert.is(r.result!.layer, undefined);
  assert.is(r.stderr, 'nope\n');
  const n = await step('cat /proc/net/dev', { network: 'none' });
  assert.is(n.result?.exitCode, 0, JSON.stringify(n));
  assert.equal(n.stdout.split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]!.trim()), ['lo']);
  assertNothingLeft();
});

/** Processes of the rootless user running `sleep 300` (a step's process is the user's uid on the host). */
function sleepers(): string[] {
  return fs.readdirSync('/proc').filter((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1') === 'sleep\0' + '300\0' && fs.statSync(`/proc/${pid}`).uid === user.uid;
    } catch {
      return false;
    }
  });
}

test('abort mid-step: ABORTED, the step process is gone, no step dir', async () => {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the aborted rootless step still ran after 60 s')), 60_000);
  });
  try {
    const r = await Promise.race([step('echo started; sleep 300', { abortOnOutput: true }), bound]);
    assert.is(r.error?.code, 'ABORTED', JSON.stringify(r));
  } finally {
    clearTimeout(timer);
  }
  assert.equal(sleepers(), [], 'no sleep 300 left');
  assertNothingLeft();
});

test('a user without a subordinate id range: RUNC_NO_SUBIDS saying how to add one', async () => {
  const r = await asUser(65534, 65534, { args: ['true'] });
  assert.is(r.error?.code, 'RUNC_NO_SUBIDS', JSON.stringify(r));
  assert.match(r.error!.hint ?? '', /usermod --add-subuids/);
  assert.equal(r.error!.location, { file: 'Dockerfile', line: 5 });
});

test('RUN --mount rootless: tmpfs, a secret (file and env=) and a cache dir reach the step in the worker; none reach the layer', async () => {
  const mounts = [
    { type: 'tmpfs', target: '/scratch' },
    { type: 'secret', target: '/run/secrets/tok', id: 'tok', readonly: true },
    { type: 'secret', target: '', id: 'tok', env: 'TOK' },
    { type: 'cache', target: '/var/cache/r', id: 'rootless-c', readonly: false },
  ];
  const script = 'grep -q " /scratch tmpfs " /proc/mounts && echo t > /scratch/t && cat /run/secrets/tok && echo "$TOK" && echo c >> /var/cache/r/c && cat /var/cache/r/c && echo l > /l';
  const r = await step(script, { mounts, secrets: { tok: 'rootless-secret' } });
  assert.ok(r.result, JSON.stringify(r));
  assert.is(r.result!.exitCode, 0, r.stderr);
  assert.is(r.stdout, 'rootless-secretrootless-secret\nc\n');
  assert.equal([...(await entries(r.result!.layer)).keys()], ['/l']);
  const again = await step('cat /var/cache/r/c', { mounts: [mounts[3]] });
  assert.is(again.stdout, 'c\n', 'the cache kept the first step\'s file');
  assertNothingLeft();
});

test('RUN --mount rootless: bind from the context (read-only, 0:0) and from the chain (rw through an overlay in the worker), cache from=, ssh to an agent of the user', async () => {
  const ctx = join(baseDir, 'ctx');
  fs.mkdirSync(join(ctx, 'app'), { recursive: true });
  fs.writeFileSync(join(ctx, 'app', 'a.txt'), 'ctx-file\n');
  const sshAdd = await packSshAdd(join(ctx, 'tools'), '/tools');
  const agentDir = join(baseDir, 'agent');
  fs.mkdirSync(agentDir, { mode: 0o700 });
  chownTree(ctx, user.uid, user.gid);
  chownTree(agentDir, user.uid, user.gid);
  const agent = await startTestAgent(agentDir, { uid: user.uid, gid: user.gid });
  try {
    const context = await openContext({ dir: ctx });
    const loc = { file: 'Dockerfile', line: 5 };
    const chain = { layers, diffIds, storeRoot: store.root };
    const mounts = [
      { type: 'bind', target: '/src', source: await contextMountSource(context, 'app', loc), readonly: true },
      { type: 'bind', target: '/tools', source: await contextMountSource(context, 'tools', loc), readonly: true },
      { type: 'bind', target: '/m', source: { kind: 'chain', chain, path: '/etc' }, readonly: false },
      { type: 'cache', target: '/c', id: 'rootless-seeded', source: { kind: 'chain', chain, path: '/etc' }, readonly: false },
      { type: 'ssh', target: '/run/buildkit/ssh_agent.0', id: 'default', mode: 0o600 },
    ];
    const script = `stat -c "%u:%g" /src/a.txt; cat /src/a.txt; (touch /src/x) 2>/dev/null || echo ro; echo more >> /m/passwd && tail -1 /m/passwd; head -1 /c/group; SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0 ${sshAdd} -l; echo l > /l`;
    const r = await step(script, { mounts, ssh: { default: agent.socket } });
    assert.ok(r.result, JSON.stringify(r));
    assert.is(r.result!.exitCode, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines.slice(0, 5), ['0:0', 'ctx-file', 'ro', 'more', 'root:x:0:'], r.stdout);
    assert.ok(r.stdout.includes(agent.fingerprint), `the agent answered: ${r.stdout}`);
    assert.equal([...(await entries(r.result!.layer)).keys()], ['/l']);
    const again = await step('tail -1 /m/passwd', { mounts: [{ ...mounts[2], readonly: true }] });
    assert.is(again.stdout, 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', 'the rw writes were thrown away');
  } finally {
    await agent.stop();
  }
  assertNothingLeft();
});

test.run();
