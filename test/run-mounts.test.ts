/**
 * `RUN --mount` in the runc executor (lib/executor/runc/step-mounts.ts),
 * against the real runc as root with the busybox chain of
 * test/helpers/images.ts: what the step sees at the mount target, and that
 * nothing of the mount (nor its target, when the image lacks it) reaches
 * the change layer. Bind mounts from the context (listed by the engine's
 * contextMountSource, .dockerignore applied) and from a chain (a snapshot),
 * read-only and rw with writes discarded; cache from=/source=; ssh through
 * a real ssh-agent, answered to the host's own ssh-add run inside.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
import { openContext } from '../lib/context/index.js';
import { contextMountSource } from '../lib/engine/run-mount-source.js';
import { packSshAdd, startTestAgent, type TestAgent } from './helpers/ssh-agent.js';

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

/** A context dir: app/{a.txt, run.sh (0755), link -> a.txt, secret.env (ignored)}, tools/ (ssh-add packed). */
let ctxDir: string;
let sshAdd: string;
async function contextSource(source: string) {
  return contextMountSource(await openContext({ dir: ctxDir }), source, { file: 'Dockerfile', line: 5 });
}

test.before(async () => {
  ctxDir = makeTempDir('mounts-ctx');
  fs.mkdirSync(join(ctxDir, 'app'));
  fs.writeFileSync(join(ctxDir, 'app', 'a.txt'), 'from the context\n');
  fs.writeFileSync(join(ctxDir, 'app', 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
  fs.writeFileSync(join(ctxDir, 'app', 'secret.env'), 'TOKEN=ignored\n');
  fs.symlinkSync('a.txt', join(ctxDir, 'app', 'link'));
  fs.chownSync(join(ctxDir, 'app', 'a.txt'), 1234, 1234);
  fs.writeFileSync(join(ctxDir, '.dockerignore'), 'app/secret.env\n');
  sshAdd = await packSshAdd(join(ctxDir, 'tools'), '/tools');
});

test('bind from the context: read-only, owners 0:0, modes and symlinks kept, the .dockerignore\'d file invisible, nothing in the layer', async () => {
  const script = 'ls -A /src; stat -c "%n %a %u:%g" /src/a.txt /src/run.sh; cat /src/a.txt; readlink /src/link; /src/run.sh; (echo x > /src/new) 2>/dev/null && echo writable || echo read-only; echo l > /l';
  const r = await runStep(script, [{ type: 'bind', target: '/src', source: await contextSource('app'), readonly: true }]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, 'a.txt\nlink\nrun.sh\n/src/a.txt 644 0:0\n/src/run.sh 755 0:0\nfrom the context\na.txt\nran\nread-only\n');
  assert.equal(await layerPaths(r), ['/l'], 'neither /src nor its files');
  assertNothingLeft();
});

test('bind rw from the context: the step may write, the writes reach neither the layer nor the context nor the next step', async () => {
  const mount = async (): Promise<RunMount> => ({ type: 'bind', target: '/src', source: await contextSource('app'), readonly: false });
  const r = await runStep('echo changed > /src/a.txt && echo new > /src/new && rm /src/run.sh && cat /src/a.txt', [await mount()]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, 'changed\n');
  assert.is(r.layer, undefined, 'no layer');
  assert.is(fs.readFileSync(join(ctxDir, 'app', 'a.txt'), 'utf8'), 'from the context\n');
  assert.ok(fs.existsSync(join(ctxDir, 'app', 'run.sh')));
  assert.not.ok(fs.existsSync(join(ctxDir, 'app', 'new')));
  const next = await runStep('cat /src/a.txt; ls /src', [await mount()]);
  assert.is(next.stdout, 'from the context\na.txt\nlink\nrun.sh\n');
  assertNothingLeft();
});

test('bind the whole context by default (source /), one file as a file target', async () => {
  const r = await runStep('test -d /ctx/app && test -d /ctx/tools && echo dirs; test -e /ctx/app/secret.env || echo hidden; cat /one', [
    { type: 'bind', target: '/ctx', source: await contextSource('/'), readonly: true },
    { type: 'bind', target: '/one', source: await contextSource('app/link'), readonly: true },
  ]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.is(r.stdout, 'dirs\nhidden\nfrom the context\n', 'a symlink source is followed inside the context');
  assert.is(r.layer, undefined);
});

test('the context listing: an ignored or missing source, or one climbing out, is RUN_MOUNT_SOURCE at the RUN line', async () => {
  for (const [source, msg] of [['app/secret.env', /excluded by \.dockerignore/], ['nope', /does not exist/], ['../x', /outside the build context/], ['app/../../x', /outside/]] as const) {
    try {
      await contextSource(source);
      assert.unreachable(source);
    } catch (e) {
      assert.instance(e, OcistackError);
      assert.is((e as OcistackError).code, 'RUN_MOUNT_SOURCE', source);
      assert.match((e as OcistackError).message, msg);
      assert.equal((e as OcistackError).location, { file: 'Dockerfile', line: 5 });
    }
  }
});

test('bind from a chain (a stage or image): its file system read-only; rw writes go to a throw-away overlay, never to the snapshot or the layer', async () => {
  const ro = await runStep('head -1 /m/passwd; cat /p | head -1; (touch /m/x) 2>/dev/null && echo writable || echo read-only', [
    { type: 'bind', target: '/m', source: { kind: 'chain', chain, path: '/etc' }, readonly: true },
    { type: 'bind', target: '/p', source: { kind: 'chain', chain, path: '/etc/passwd' }, readonly: true },
  ]);
  assert.is(ro.exitCode, 0, ro.stderr);
  assert.is(ro.stdout, 'root:x:0:0:root:/root:/bin/sh\nroot:x:0:0:root:/root:/bin/sh\nread-only\n');
  const rw = await runStep('echo extra >> /m/passwd && rm /m/group && touch /m/x && echo edited >> /p && ls /m', [
    { type: 'bind', target: '/m', source: { kind: 'chain', chain, path: '/etc' }, readonly: false },
    { type: 'bind', target: '/p', source: { kind: 'chain', chain, path: '/etc/passwd' }, readonly: false },
  ]);
  assert.is(rw.exitCode, 0, rw.stderr);
  assert.is(rw.stdout, 'passwd\nx\n');
  assert.is(rw.layer, undefined);
  const after = await runStep('ls /m; tail -1 /etc/passwd; tail -1 /p', [
    { type: 'bind', target: '/m', source: { kind: 'chain', chain, path: '/etc' }, readonly: true },
    { type: 'bind', target: '/p', source: { kind: 'chain', chain, path: '/etc/passwd' }, readonly: true },
  ]);
  assert.is(after.stdout, 'group\npasswd\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', 'the snapshot is untouched');
  assertNothingLeft();
});

test('cache from= a chain: a new cache dir starts as a copy of that path, then keeps what steps write; source= without from is a subdir of the cache', async () => {
  const m: RunMount = { type: 'cache', target: '/c', id: 'seeded', source: { kind: 'chain', chain, path: '/etc' }, readonly: false };
  const first = await runStep('head -1 /c/passwd; echo mine > /c/mine', [m]);
  assert.is(first.exitCode, 0, first.stderr);
  assert.is(first.stdout, 'root:x:0:0:root:/root:/bin/sh\n');
  assert.is(first.layer, undefined);
  const second = await runStep('ls /c', [m]);
  assert.is(second.stdout, 'group\nmine\npasswd\n', 'the same cache the next time');
  const plain = await runStep('ls /c | wc -l', [{ type: 'cache', target: '/c', id: 'seeded', readonly: false }]);
  assert.is(plain.stdout.trim(), '0', 'the same id without from= is another cache (BuildKit keys it by its base too)');
  const sub = await runStep('echo s > /c/f', [{ type: 'cache', target: '/c', id: 'with-sub', subpath: 'a/b', readonly: false }]);
  assert.is(sub.exitCode, 0, sub.stderr);
  assert.is(fs.readFileSync(join(cacheMountDir(cacheDir, 'with-sub'), 'a', 'b', 'f'), 'utf8'), 's\n');
  assertNothingLeft();
});

test('ssh: a real ssh-agent answers ssh-add -l from inside the step; mode/uid decide who may connect; SSH_AUTH_SOCK as given', async () => {
  const agent: TestAgent = await startTestAgent(makeTempDir('mounts-agent'));
  try {
    const tools: RunMount = { type: 'bind', target: '/tools', source: await contextSource('tools'), readonly: true };
    const ssh = (extra: Partial<RunMount> = {}): RunMount => ({ type: 'ssh', target: '/run/buildkit/ssh_agent.0', id: 'default', mode: 0o600, ...extra });
    const env = [`PATH=${BUSYBOX_PATH}`, 'SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0'];
    const script = `stat -c "%F %a %u" /run/buildkit/ssh_agent.0; ${sshAdd} -l`;
    const r = await runStep(script, [ssh(), tools], { ssh: { default: agent.socket }, process: { args: ['/bin/sh', '-c', script], env, cwd: '/', user: '' } });
    assert.is(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^socket 600 0\n/);
    assert.ok(r.stdout.includes(agent.fingerprint) && r.stdout.includes(agent.comment), `the agent's answer: ${r.stdout}`);
    assert.is(r.layer, undefined, 'neither /run/buildkit nor the socket in the layer');
    // USER 1000: denied with the default owner 0 and mode 0600, allowed with uid=1000.
    const asApp = { process: { args: ['/bin/sh', '-c', `${sshAdd} -l`], env, cwd: '/', user: '1000:1000' }, ssh: { default: agent.socket } };
    const denied = await runStep('', [ssh(), tools], asApp);
    assert.is.not(denied.exitCode, 0, denied.stdout);
    const allowed = await runStep('', [ssh({ uid: 1000, gid: 1000 }), tools], asApp);
    assert.is(allowed.exitCode, 0, allowed.stderr);
    assert.ok(allowed.stdout.includes(agent.fingerprint));
  } finally {
    await agent.stop();
  }
  assertNothingLeft();
});

test('ssh required but not given, or its socket gone: RUN_SSH_MISSING at the RUN line; optional and not given: no mount', async () => {
  for (const given of [undefined, { default: join(makeTempDir('mounts-nosock'), 'gone.sock') }]) {
    try {
      await runStep('true', [{ type: 'ssh', target: '/run/buildkit/ssh_agent.0', id: 'default', required: true }], given ? { ssh: given } : {});
      assert.unreachable('should have failed');
    } catch (e) {
      assert.instance(e, OcistackError);
      assert.is((e as OcistackError).code, 'RUN_SSH_MISSING');
      assert.equal((e as OcistackError).location, { file: 'Dockerfile', line: 5 });
      assert.match((e as OcistackError).hint ?? '', /--ssh default/);
    }
  }
  const r = await runStep('test -e /run/buildkit/ssh_agent.0 && echo mounted || echo absent', [{ type: 'ssh', target: '/run/buildkit/ssh_agent.0', id: 'default' }]);
  assert.is(r.stdout, 'absent\n');
  assertNothingLeft();
});

test('abort mid-step with a rw bind overlay and an ssh proxy: ABORTED, no mount, step dir or proxy socket left', async () => {
  const agent = await startTestAgent(makeTempDir('mounts-agent-abort'));
  const proxies = () => fs.readdirSync(process.env.TMPDIR ?? '/tmp').filter((n) => n.startsWith('ssh-'));
  const before = proxies();
  const ac = new AbortController();
  try {
    await runStep('echo started; sleep 300', [
      { type: 'bind', target: '/m', source: { kind: 'chain', chain, path: '/etc' }, readonly: false },
      { type: 'ssh', target: '/run/buildkit/ssh_agent.0', id: 'default', mode: 0o600 },
    ], { ssh: { default: agent.socket }, signal: ac.signal, onOutput: () => ac.abort('received SIGINT') });
    assert.unreachable('should have been aborted');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'ABORTED');
  } finally {
    await agent.stop();
  }
  assert.equal(proxies(), before, 'the proxy socket dir is gone');
  assertNothingLeft();
});

test('kill -9 mid-step with a rw bind: the next step unmounts its bind overlay and root overlay and removes its dir', async () => {
  const child = spawn(process.execPath, [
    fileURLToPath(new URL('./helpers/runc-step-child.js', import.meta.url)),
    JSON.stringify({
      storeRoot: chain.store.root, layers: chain.layers, diffIds: chain.diffIds, cacheDir, script: 'echo go; sleep 300',
      mounts: [{ type: 'bind', target: '/m', readonly: false, source: { kind: 'chain', path: '/etc', chain: { layers: chain.layers, diffIds: chain.diffIds, storeRoot: chain.store.root } } }],
    }),
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => b.toString().includes('started') && resolve());
    child.on('exit', (code) => reject(new Error(`the child exited early (${code})`)));
  });
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
  const left = mountPoints().filter((m) => m.startsWith(cacheDir));
  assert.is(left.length, 2, `the root overlay and the bind overlay are still mounted: ${left.join(', ')}`);
  assert.ok(left.some((m) => m.includes('/binds/')));
  const r = await runStep('true', []);
  assert.is(r.exitCode, 0, r.stderr);
  assertNothingLeft();
});

test.run();
