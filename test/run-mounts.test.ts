/**
 * `RUN --mount` in the runc executor (lib/executor/runc/step-mounts.ts),
 * against the real runc as root with the busybox chain of
 * test/helpers/images.ts: what the step sees at the mount target, and that
 * nothing of the mount (nor its target, when the image lacks it) reaches
 * the change layer. Types not implemented yet keep RUN_MOUNT_UNSUPPORTED.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { indexLayer } from '../lib/layer/index.js';
import type { LayerChain, RunMount, RunRequest, RunResult } from '../lib/executor/types.js';
import { busyboxChain, runScript, type Ran } from './helpers/run-steps.js';
import { createRuncExecutor, runcStepsDir } from '../lib/executor/runc/index.js';
import { mountPoints } from '../lib/executor/runc/overlay.js';
import { OcistackError } from '../lib/errors.js';
import { acquireLock } from '../lib/lock.js';
import { cacheMountDir } from '../lib/executor/runc/step-mounts.js';
import { BUSYBOX_PATH } from './helpers/images.js';
import { makeTempDir, requireTool } from './helpers/tools.js';

let chain: LayerChain;
let cacheDir: string;
const executor = createRuncExecutor({ runc: requireTool('runc') });

test.before(async () => {
  chain = await busyboxChain(makeTempDir('mounts-store'));
  cacheDir = makeTempDir('mounts-cache');
});

function runStep(script: string, mounts: RunMount[], extra: Partial<RunRequest> = {}): Promise<Ran> {
  return runScript(executor, { chain, cacheDir }, script, { mounts, location: { file: 'Dockerfile', line: 5 }, ...extra });
}

async function layerPaths(r: RunResult): Promise<string[]> {
  if (!r.layer) return [];
  const idx = await indexLayer(chain.store, r.layer.digest);
  return idx.entries.map((e) => (e.type === 'whiteout' ? `wh:${e.path}` : e.path)).sort();
}

function assertNothingLeft(): void {
  assert.equal(mountPoints().filter((m) => m.startsWith(cacheDir)), [], 'no mount below the cache dir');
  const steps = fs.existsSync(runcStepsDir(cacheDir)) ? fs.readdirSync(runcStepsDir(cacheDir)) : [];
  assert.equal(steps, [], 'no step temp dir');
}

test('tmpfs at a target the image lacks: a tmpfs in the step, neither its files nor the target in the layer', async () => {
  const r = await runStep('grep " /cache/tmp tmpfs " /proc/mounts && echo data > /cache/tmp/f && cat /cache/tmp/f && echo kept > /kept', [
    { type: 'tmpfs', target: '/cache/tmp' },
  ]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /data\n$/);
  assert.equal(await layerPaths(r), ['/kept']);
  assertNothingLeft();
});

test('tmpfs over a directory of the image (/tmp) with size: writes stay in the tmpfs, size applied', async () => {
  const r = await runStep('grep " /tmp tmpfs " /proc/mounts; echo x > /tmp/x', [{ type: 'tmpfs', target: '/tmp', size: 1024 * 1024 }]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /size=1024k/);
  assert.is(r.layer, undefined, 'nothing changed in the image');
});

test('tmpfs target relative to the WORKDIR; an empty target is RUN_MOUNT at the RUN line', async () => {
  const r = await runStep('grep " /work/t tmpfs " /proc/mounts >/dev/null', [{ type: 'tmpfs', target: 't' }], {
    process: { args: ['/bin/sh', '-c', 'grep " /work/t tmpfs " /proc/mounts >/dev/null'], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/work', user: '' },
  });
  assert.is(r.exitCode, 0, r.stderr);
  try {
    await runStep('true', [{ type: 'tmpfs', target: '' }]);
    assert.unreachable('should have failed');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'RUN_MOUNT');
    assert.equal((e as OcistackError).location, { file: 'Dockerfile', line: 5 });
  }
  assertNothingLeft();
});

const SECRET = Buffer.from('s3cr3t-value-0xC0FFEE');

test('secret: bound read-only at /run/secrets/ID (0400 root by default), neither it nor /run/secrets in the layer', async () => {
  const r = await runStep('cat /run/secrets/tok > /dev/null && stat -c "%a %u" /run/secrets/tok && (echo x > /run/secrets/tok) 2>/dev/null || echo read-only; sha256sum < /run/secrets/tok > /h', [
    { type: 'secret', target: '/run/secrets/tok', id: 'tok', readonly: true },
  ], { secrets: { tok: SECRET } });
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, '400 0\nread-only\n');
  assert.equal(await layerPaths(r), ['/h']);
  assertNothingLeft();
});

test('secret: target, mode, uid/gid honoured; USER of that uid reads it', async () => {
  const r = await runStep('stat -c "%a %u %g" /etc/app/key; cat /etc/app/key', [
    { type: 'secret', target: '/etc/app/key', id: 'k', mode: 0o440, uid: 1000, gid: 1000 },
  ], { secrets: { k: SECRET }, process: { args: ['/bin/sh', '-c', 'stat -c "%a %u %g" /etc/app/key; cat /etc/app/key'], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: '1000:1000' } });
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, `440 1000 1000\n${SECRET.toString()}`);
  assert.is(r.layer, undefined, 'nothing of /etc/app reaches the layer');
});

test('secret with env=: a variable of this step only, no file', async () => {
  const script = 'test "$TOKEN" = "$(printf %s "$TOKEN")" && printf %s "$TOKEN" | sha256sum; test -e /run/secrets/tok && echo file || echo no-file';
  const r = await runStep(script, [{ type: 'secret', target: '', id: 'tok', env: 'TOKEN' }], { secrets: { tok: SECRET } });
  assert.is(r.exitCode, 0, r.stderr);
  const { createHash } = await import('node:crypto');
  assert.is(r.stdout, `${createHash('sha256').update(SECRET).digest('hex')}  -\nno-file\n`);
  const next = await runStep('echo "[$TOKEN]"', []);
  assert.is(next.stdout, '[]\n', 'the next step does not see it');
});

test('secret required but not given: RUN_SECRET_MISSING at the RUN line, nothing left', async () => {
  try {
    await runStep('true', [{ type: 'secret', target: '/run/secrets/x', id: 'x', required: true }]);
    assert.unreachable('should have failed');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'RUN_SECRET_MISSING');
    assert.equal((e as OcistackError).location, { file: 'Dockerfile', line: 5 });
  }
  assertNothingLeft();
});

test('cache: kept across steps (and builds: same cache dir), never in the layer; the target the image lacks neither', async () => {
  const first = await runStep('echo from-first > /var/cache/app/x && echo l > /l', [{ type: 'cache', target: '/var/cache/app', id: 'c1', readonly: false }]);
  assert.is(first.exitCode, 0, first.stderr);
  assert.equal(await layerPaths(first), ['/l']);
  assert.is(fs.readFileSync(join(cacheMountDir(cacheDir, 'c1'), 'x'), 'utf8'), 'from-first\n', 'below <cacheDir>/cache-mounts');
  const second = await runStep('cat /other/x; ls -ld /other | cut -c1-10', [{ type: 'cache', target: '/other', id: 'c1', readonly: false }]);
  assert.is(second.exitCode, 0, second.stderr);
  assert.is(second.stdout, 'from-first\ndrwxr-xr-x\n');
  assert.is(second.layer, undefined);
  // Another id (default: the target) is another cache.
  const third = await runStep('test -e /other/x && echo seen || echo empty', [{ type: 'cache', target: '/other', readonly: false }]);
  assert.is(third.stdout, 'empty\n');
  assertNothingLeft();
});

test('cache: mode, uid, gid of a new cache dir; USER of that uid can write', async () => {
  const script = 'stat -c "%a %u %g" /c && touch /c/f';
  const r = await runStep(script, [{ type: 'cache', target: '/c', id: 'c-owned', mode: 0o700, uid: 1000, gid: 1000, readonly: false }], {
    process: { args: ['/bin/sh', '-c', script], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: '1000:1000' },
  });
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, '700 1000 1000\n');
});

test('cache sharing=locked: the step waits while another holds the cache lock, and runs once it is released', async () => {
  const lockFile = `${cacheMountDir(cacheDir, 'c-locked')}.lock`;
  fs.mkdirSync(join(cacheDir, 'cache-mounts'), { recursive: true });
  const held = await acquireLock(lockFile);
  let done = false;
  const p = runStep('echo ran > /c/marker', [{ type: 'cache', target: '/c', id: 'c-locked', sharing: 'locked', readonly: false }]).finally(() => (done = true));
  await new Promise((r) => setTimeout(r, 1500));
  assert.not.ok(done, 'the step did not finish while the lock was held');
  assert.not.ok(fs.existsSync(join(cacheMountDir(cacheDir, 'c-locked'), 'marker')), 'and did not write into the cache');
  await held.release();
  const r = await p;
  assert.is(r.exitCode, 0, r.stderr);
  assert.ok(fs.existsSync(join(cacheMountDir(cacheDir, 'c-locked'), 'marker')));
  assert.not.ok(fs.existsSync(lockFile), 'the step released the lock');
  assertNothingLeft();
});

test('cache sharing=private while another holds it: an empty dir of its own, the shared one untouched', async () => {
  await runStep('echo shared > /c/s', [{ type: 'cache', target: '/c', id: 'c-priv', readonly: false }]);
  const held = await acquireLock(`${cacheMountDir(cacheDir, 'c-priv')}.lock`);
  try {
    const r = await runStep('ls /c; echo p > /c/p', [{ type: 'cache', target: '/c', id: 'c-priv', sharing: 'private', readonly: false }]);
    assert.is(r.exitCode, 0, r.stderr);
    assert.is(r.stdout, '');
  } finally {
    await held.release();
  }
  assert.equal(fs.readdirSync(cacheMountDir(cacheDir, 'c-priv')), ['s']);
  assertNothingLeft();
});

test('a type not implemented yet (ssh) is still RUN_MOUNT_UNSUPPORTED', async () => {
  try {
    await runStep('true', [{ type: 'ssh', target: '/run/ssh' }]);
    assert.unreachable('should have failed');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'RUN_MOUNT_UNSUPPORTED');
  }
  assertNothingLeft();
});

test.run();
