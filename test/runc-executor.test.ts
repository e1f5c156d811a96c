/**
 * The runc executor (lib/executor/runc) against the real runc, as root: a
 * busybox image chain (test/helpers/images.ts, made with umoci) in a blob
 * store, one RUN step per test through `Executor.run`, and the change layer
 * read back with lib/layer's index and GNU tar. Also checks that nothing is
 * left behind: no mount, no runc container, no step temp dir.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { indexLayer, type IndexedEntry } from '../lib/layer/index.js';
import type { LayerChain, RunRequest, RunResult } from '../lib/executor/types.js';
import { busyboxChain, runScript, type Ran } from './helpers/run-steps.js';
import { createRuncExecutor, findRunc, runcStateDir, runcStepsDir } from '../lib/executor/runc/index.js';
import { mountPoints } from '../lib/executor/runc/overlay.js';
import { registeredTemps } from '../lib/temp-files.js';
import { OcistackError } from '../lib/errors.js';
import { APP_USER, BUSYBOX_PATH } from './helpers/images.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';
import { layerSnapshotsRoot, snapshotsRoot } from '../lib/rootfs/index.js';
import { excludeFromLayerAudit } from './layer-audit-keep.js';
import { putLayers } from './rootfs-util.js';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

let chain: LayerChain;
let cacheDir: string;
const runc = requireTool('runc');
const executor = createRuncExecutor({ runc });

test.before(async () => {
  // A store of our own: the change layers are written into it.
  chain = await busyboxChain(makeTempDir('runc-store'));
  cacheDir = makeTempDir('runc-cache');
});

function runStep(script: string, extra: Partial<RunRequest> & { user?: string } = {}): Promise<Ran> {
  const { user, ...rest } = extra;
  return runScript(executor, { chain, cacheDir }, script, {
    process: { args: ['/bin/sh', '-c', script], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: user ?? '' },
    ...rest,
  });
}

async function entries(r: RunResult): Promise<Map<string, IndexedEntry>> {
  assert.ok(r.layer, 'the step made a layer');
  const idx = await indexLayer(chain.store, r.layer!.digest);
  return new Map(idx.entries.map((e) => [e.type === 'opaque' ? `${e.path}/.wh..wh..opq` : e.type === 'whiteout' ? `wh:${e.path}` : e.path, e]));
}

/** GNU tar's view of one member of the layer. */
function tarCat(r: RunResult, member: string): Promise<string> {
  return runOk('tar', ['-xzOf', chain.store.path(r.layer!.digest), member]);
}

function assertNothingLeft(): void {
  const mounts = mountPoints().filter((m) => m.startsWith(cacheDir));
  assert.equal(mounts, [], 'no mount below the cache dir');
  const steps = fs.existsSync(runcStepsDir(cacheDir)) ? fs.readdirSync(runcStepsDir(cacheDir)) : [];
  assert.equal(steps, [], 'no step temp dir');
  assert.equal(registeredTemps().filter((t) => t.startsWith(cacheDir)), [], 'no registered temp path');
}

async function runcList(): Promise<string[]> {
  const out = await runOk(runc, ['--root', runcStateDir(cacheDir), 'list', '-q']);
  return out.split('\n').filter(Boolean);
}

test('findRunc finds runc on PATH, and nothing on an empty PATH', () => {
  assert.ok(findRunc(process.env)?.endsWith('/runc'));
  assert.is(findRunc({ PATH: '' }), undefined);
});

test('echo hi > /x: a layer with /x, output via onOutput', async () => {
  const r = await runStep('echo out; echo err >&2; echo hi > /x');
  assert.is(r.exitCode, 0);
  assert.is(r.stdout, 'out\n');
  assert.is(r.stderr, 'err\n');
  const e = await entries(r);
  assert.equal([...e.keys()], ['/x']);
  assert.is(e.get('/x')!.type, 'file');
  assert.is(e.get('/x')!.uid, 0);
  assert.is(await tarCat(r, 'x'), 'hi\n');
  assertNothingLeft();
});

test('true changes nothing: no layer', async () => {
  const r = await runStep('true');
  assert.is(r.exitCode, 0);
  assert.is(r.layer, undefined);
});

test('rm /bin/ls: a whiteout (and /bin as its parent), nothing else', async () => {
  const r = await runStep('rm /bin/ls');
  assert.is(r.exitCode, 0);
  const e = await entries(r);
  assert.equal([...e.keys()].sort(), ['/bin', 'wh:/bin/ls']);
  assert.is(e.get('wh:/bin/ls')!.type, 'whiteout');
});

test('rm -rf /home && mkdir /home && echo a > /home/a: an opaque directory', async () => {
  const r = await runStep('rm -rf /home && mkdir /home && echo a > /home/a');
  assert.is(r.exitCode, 0, r.stderr);
  const e = await entries(r);
  assert.equal([...e.keys()].sort(), ['/home', '/home/.wh..wh..opq', '/home/a']);
  assert.is(await tarCat(r, 'home/a'), 'a\n');
});

test('rm -rf /etc fails on the bind-mounted /etc/hosts, as in Docker', async () => {
  const r = await runStep('rm -rf /etc');
  assert.is.not(r.exitCode, 0);
  assert.match(r.stderr, /hosts|resolv\.conf|hostname/);
});

test('chmod, symlink, hard link, mkdir -p: captured with modes and link groups', async () => {
  const r = await runStep('mkdir -p /opt/a/b && echo x > /opt/a/f && chmod 4750 /opt/a/f && ln /opt/a/f /opt/a/g && ln -s f /opt/a/l && chmod 700 /opt/a/b');
  assert.is(r.exitCode, 0, r.stderr);
  const e = await entries(r);
  assert.equal([...e.keys()].sort(), ['/opt', '/opt/a', '/opt/a/b', '/opt/a/f', '/opt/a/g', '/opt/a/l']);
  assert.is(e.get('/opt/a/f')!.mode, 0o4750);
  assert.is(e.get('/opt/a/b')!.mode, 0o700);
  assert.is(e.get('/opt/a/g')!.type, 'hardlink');
  assert.is(e.get('/opt/a/g')!.linkTarget, '/opt/a/f');
  assert.is(e.get('/opt/a/l')!.type, 'symlink');
  assert.is(e.get('/opt/a/l')!.linkTarget, 'f');
});

test('a failing command returns its exit code and no layer', async () => {
  const r = await runStep('echo partial > /y; echo oops >&2; exit 7');
  assert.is(r.exitCode, 7);
  assert.is(r.layer, undefined);
  assert.is(r.stderr, 'oops\n');
  assertNothingLeft();
});

test('USER app (by name) and 1234:4321 (numeric): files owned by that id, id shows the ids', async () => {
  const byName = await runStep('id -u; id -g; touch /tmp/n; grep -q localhost /etc/hosts', { user: APP_USER.name });
  assert.is(byName.exitCode, 0, byName.stderr);
  assert.is(byName.stdout, `${APP_USER.uid}\n${APP_USER.gid}\n`);
  const e1 = await entries(byName);
  assert.is(e1.get('/tmp/n')!.uid, APP_USER.uid);
  assert.is(e1.get('/tmp/n')!.gid, APP_USER.gid);
  const numeric = await runStep('touch /tmp/m', { user: '1234:4321' });
  assert.is(numeric.exitCode, 0, numeric.stderr);
  const e2 = await entries(numeric);
  assert.is(e2.get('/tmp/m')!.uid, 1234);
  assert.is(e2.get('/tmp/m')!.gid, 4321);
  // /tmp itself keeps the image's metadata (copied up by overlay).
  assert.is(e2.get('/tmp')!.mode, 0o1777);
});

test('an unknown USER name is an OcistackError at the RUN line', async () => {
  try {
    await runStep('true', { user: 'nosuchuser' });
    assert.unreachable('should have failed');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'RUN_USER');
    assert.equal((e as OcistackError).location, { file: 'Dockerfile', line: 3 });
  }
  assertNothingLeft();
});

test('without runc: RUNC_MISSING at the RUN line, saying how to install it', async () => {
  try {
    await createRuncExecutor({ runc: '/nonexistent/runc' }).run({
      chain, process: { args: ['true'], env: [], cwd: '/', user: '' }, mounts: [], network: 'default', security: 'sandbox',
      location: { file: 'Dockerfile', line: 4 }, stepId: '#1', cacheDir,
    });
    assert.unreachable('should have failed');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'RUNC_MISSING');
    assert.equal((e as OcistackError).location, { file: 'Dockerfile', line: 4 });
    assert.match((e as OcistackError).hint ?? '', /apt-get install runc/);
  }
  assertNothingLeft();
});

test('a command that does not exist: non-zero exit, runc says why on stderr, nothing left', async () => {
  const r = await runStep('', { process: { args: ['/bin/no-such-program'], env: [], cwd: '/', user: '' } });
  assert.is.not(r.exitCode, 0);
  assert.match(r.stderr, /no-such-program/);
  assert.is(r.layer, undefined);
  assertNothingLeft();
});

test('network none: loopback only; default: the host network', async () => {
  const none = await runStep('cat /proc/net/dev', { network: 'none' });
  assert.is(none.exitCode, 0, none.stderr);
  const ifaces = (s: string) => s.split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]!.trim());
  assert.equal(ifaces(none.stdout), ['lo']);
  const host = await runStep('cat /proc/net/dev');
  const hostIfaces = fs.readFileSync('/proc/net/dev', 'utf8');
  assert.equal(ifaces(host.stdout).sort(), ifaces(hostIfaces).sort());
});

test('/etc/hosts, /etc/resolv.conf, /etc/hostname are readable in the step and never in the layer; /proc, /dev, /sys neither', async () => {
  const r = await runStep('grep -q localhost /etc/hosts && cat /etc/hostname && ls /proc/self >/dev/null && test -c /dev/null && echo z > /etc/z');
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, 'ocistack\n');
  const e = await entries(r);
  assert.equal([...e.keys()].sort(), ['/etc', '/etc/z']);
});

test('abort mid-sleep: rejects ABORTED, leaves no mount, container or temp dir', async () => {
  const ac = new AbortController();
  let started = false;
  // sleep 300 with a 60 s bound: only killing the container ends the step in time.
  const p = runStep('echo started; sleep 300', {
    signal: ac.signal,
    onOutput: () => {
      started = true;
      ac.abort('received SIGINT');
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the aborted step still ran after 60 s: the container was not killed')), 60_000);
  });
  try {
    await Promise.race([p, bound]);
    assert.unreachable('should have been aborted');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'ABORTED');
  } finally {
    clearTimeout(timer);
  }
  assert.ok(started, 'the step had started');
  assertNothingLeft();
  assert.equal(await runcList(), [], 'no runc container');
});

test('security insecure gives every capability this process has (CAP_SYS_ADMIN), sandbox does not', async () => {
  const capEff = async (security: 'sandbox' | 'insecure') => {
    const r = await runStep('grep CapEff /proc/self/status', { security });
    assert.is(r.exitCode, 0, r.stderr);
    return BigInt('0x' + r.stdout.trim().split(/\s+/)[1]);
  };
  const CAP_SYS_ADMIN = 1n << 21n;
  assert.is((await capEff('sandbox')) & CAP_SYS_ADMIN, 0n);
  const own = BigInt('0x' + /^CapBnd:\s*(\w+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
  assert.ok(own & CAP_SYS_ADMIN, 'the test runs with CAP_SYS_ADMIN');
  assert.is(await capEff('insecure'), own & ((1n << 41n) - 1n));
});

test('kill -9 of ocistack mid-step: the next step removes its container, mount and step dir', async () => {
  const child = spawn(process.execPath, [
    fileURLToPath(new URL('./helpers/runc-step-child.js', import.meta.url)),
    JSON.stringify({ storeRoot: chain.store.root, layers: chain.layers, diffIds: chain.diffIds, cacheDir, script: 'echo go; sleep 300' }),
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => b.toString().includes('started') && resolve());
    child.on('exit', (code) => reject(new Error(`the child exited early (${code})`)));
  });
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
  // The dead process's leftovers are really there...
  assert.equal((await runcList()).length, 1, 'its container is still there');
  assert.equal(mountPoints().filter((m) => m.startsWith(cacheDir)).length, 1, 'its overlay is still mounted');
  // ...and the next step sweeps them.
  const r = await runStep('true');
  assert.is(r.exitCode, 0);
  assert.equal(await runcList(), [], 'no runc container');
  assertNothingLeft();
});

/** The layer snapshots below a cache dir: name -> inode of its diff dir. */
function layerSnapshots(dir: string): Map<string, number> {
  const root = layerSnapshotsRoot(dir);
  if (!fs.existsSync(root)) return new Map();
  return new Map(fs.readdirSync(root).map((n) => [n, fs.statSync(join(root, n, 'fs')).ino]));
}

function extend(c: LayerChain, r: RunResult): LayerChain {
  assert.ok(r.layer, 'the step made a layer');
  return { ...c, layers: [...c.layers, { mediaType: r.layer!.mediaType, digest: r.layer!.digest, size: r.layer!.size }], diffIds: [...c.diffIds, r.layer!.diffId] };
}

test('consecutive RUNs extend the layer snapshots: each RUN applies only the layer before it (the base blob is gone)', async () => {
  const c1 = await busyboxChain(makeTempDir('runc-extend-store'));
  const cd = makeTempDir('runc-extend-cache');
  const r1 = await runScript(executor, { chain: c1, cacheDir: cd }, 'echo 1 > /f1; rm /bin/ls; rm -rf /home; mkdir /home; echo h > /home/h');
  assert.is(r1.exitCode, 0, r1.stderr);
  const after1 = layerSnapshots(cd);
  assert.is(after1.size, 1, 'the base layer');
  // Only a reused snapshot can supply the base now.
  for (const l of c1.layers) fs.rmSync(c1.store.path(l.digest));
  const c2 = extend(c1, r1);
  const r2 = await runScript(executor, { chain: c2, cacheDir: cd }, 'cat /f1; ls /bin/ls 2>/dev/null || echo gone; ls -A /home; echo 2 > /f2');
  assert.is(r2.exitCode, 0, r2.stderr);
  assert.is(r2.stdout, '1\ngone\nh\n', 'the second RUN sees the first one\'s change: file, whiteout, opaque dir');
  const after2 = layerSnapshots(cd);
  assert.is(after2.size, 2, 'one more snapshot: the first RUN\'s layer');
  for (const [k, ino] of after1) assert.is(after2.get(k), ino, 'the base snapshot was reused, not made again');
  const r3 = await runScript(executor, { chain: extend(c2, r2), cacheDir: cd }, 'cat /f1 /f2');
  assert.is(r3.stdout, '1\n2\n');
  assert.is(layerSnapshots(cd).size, 3);
  assert.not.ok(fs.readdirSync(snapshotsRoot(cd)).some((n) => /^[0-9a-f]{64}$/.test(n)), 'no flattened snapshot');
});

test('a chain too deep for one overlay mount runs on a flattened snapshot', async () => {
  const c = await busyboxChain(makeTempDir('runc-deep-store'));
  excludeFromLayerAudit(c.store.root);
  const extra = await putLayers(c.store, Array.from({ length: 60 }, (_, i) => [{ name: `l${i}`, content: `${i}\n` }]));
  const deep: LayerChain = { ...c, layers: [...c.layers, ...extra.layers], diffIds: [...c.diffIds, ...extra.diffIds] };
  const cd = makeTempDir('runc-deep-cache');
  const r = await runScript(executor, { chain: deep, cacheDir: cd }, 'cat /l0 /l59; echo x > /x');
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, '0\n59\n');
  assert.equal((await indexLayer(c.store, r.layer!.digest)).entries.map((e) => e.path), ['/x']);
  assert.ok(fs.readdirSync(snapshotsRoot(cd)).some((n) => /^[0-9a-f]{64}$/.test(n)), 'a flattened snapshot');
  assert.is(layerSnapshots(cd).size, 0, 'no layer snapshots');
});

test('after all steps: no container in runc state dir', async () => {
  assert.equal(await runcList(), []);
  assertNothingLeft();
});

test.run();
