/**
 * lib/executor/runc/spec.ts (the OCI runtime config of a RUN step, a pure
 * function) and user.ts (USER resolved from the image's /etc/passwd and
 * /etc/group). No runc here: test/runc-executor.test.ts runs the result.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { OcistackError } from '../lib/errors.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_PATH, runtimeSpec, type RunSpecInput } from '../lib/executor/runc/spec.js';
import { readAccountFiles, resolveRunUser } from '../lib/executor/runc/user.js';
import { parseSubIds } from '../lib/executor/runc/subids.js';
import { makeTempDir } from './helpers/tools.js';

const at = { file: 'Dockerfile', line: 7 };
const base: RunSpecInput = {
  args: ['/bin/sh', '-c', 'make'],
  env: ['PATH=/bin', 'A=1'],
  cwd: '/src',
  user: { uid: 1000, gid: 1000, additionalGids: [27] },
  network: 'default',
  security: 'sandbox',
  rootfs: '/x/merged',
  hostname: 'ocistack',
  etc: { hosts: '/s/hosts', resolvConf: '/s/resolv.conf', hostname: '/s/hostname' },
};

test('process: args, env, cwd, user with additional gids; no terminal, no rlimits', () => {
  const s = runtimeSpec(base);
  assert.equal(s.process.args, ['/bin/sh', '-c', 'make']);
  assert.equal(s.process.env, ['PATH=/bin', 'A=1']);
  assert.is(s.process.cwd, '/src');
  assert.equal(s.process.user, { uid: 1000, gid: 1000, additionalGids: [27] });
  assert.is(s.process.terminal, false);
  assert.not.ok('rlimits' in s.process);
  assert.equal(s.root, { path: '/x/merged', readonly: false });
  assert.equal(s.process.capabilities.bounding, DEFAULT_CAPABILITIES);
});

test('a default PATH is added when the env has none', () => {
  assert.equal(runtimeSpec({ ...base, env: ['A=1'] }).process.env, [DEFAULT_PATH, 'A=1']);
});

test('namespaces: network only for network none', () => {
  const types = (n: RunSpecInput['network']) => runtimeSpec({ ...base, network: n }).linux.namespaces.map((x) => x.type).sort();
  assert.equal(types('default'), ['ipc', 'mount', 'pid', 'uts']);
  assert.equal(types('host'), ['ipc', 'mount', 'pid', 'uts']);
  assert.equal(types('none'), ['ipc', 'mount', 'network', 'pid', 'uts']);
});

test('mounts: /proc, /dev, /dev/pts, /dev/shm, /sys read-only, and the generated /etc files bound read-only', () => {
  const s = runtimeSpec(base);
  assert.equal(s.mounts.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/sys', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname']);
  assert.ok(s.mounts.find((m) => m.destination === '/sys')!.options!.includes('ro'));
  const hosts = s.mounts.find((m) => m.destination === '/etc/hosts')!;
  assert.is(hosts.source, '/s/hosts');
  assert.ok(hosts.options!.includes('ro') && hosts.options!.includes('rbind'));
  assert.ok(s.linux.maskedPaths!.includes('/proc/kcore'));
});

test('insecure: all capabilities, nothing masked, /sys writable', () => {
  const s = runtimeSpec({ ...base, security: 'insecure' });
  assert.equal(s.process.capabilities.effective, ALL_CAPABILITIES);
  assert.is(s.linux.maskedPaths, undefined);
  assert.is(s.linux.readonlyPaths, undefined);
  assert.not.ok(s.mounts.find((m) => m.destination === '/sys')!.options!.includes('ro'));
});

test('capabilities are limited to the caller\'s bounding set', () => {
  const noSysResource = ((1n << 41n) - 1n) & ~(1n << 24n);
  const s = runtimeSpec({ ...base, security: 'insecure', boundingCaps: noSysResource });
  assert.ok(s.process.capabilities.bounding.includes('CAP_SYS_ADMIN'));
  assert.not.ok(s.process.capabilities.bounding.includes('CAP_SYS_RESOURCE'));
  assert.is(s.process.capabilities.bounding.length, ALL_CAPABILITIES.length - 1);
  const onlyChown = runtimeSpec({ ...base, boundingCaps: 1n });
  assert.equal(onlyChown.process.capabilities.effective, ['CAP_CHOWN']);
});

const files = {
  passwd: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n# comment\nsvc:x:999:999::/:/bin/false\n',
  group: 'root:x:0:\napp:x:1001:\nwheel:x:10:app,svc\ndocker:x:27:app\nsvc:x:999:\n',
};

test('USER by name: uid, primary gid and the groups listing the user', () => {
  assert.equal(resolveRunUser('app', files, at), { uid: 1000, gid: 1001, additionalGids: [10, 27] });
});

test('USER root (empty) and by uid: passwd gid when known, 0 when not', () => {
  assert.equal(resolveRunUser('', files, at), { uid: 0, gid: 0, additionalGids: [] });
  assert.equal(resolveRunUser('1000', files, at), { uid: 1000, gid: 1001, additionalGids: [10, 27] });
  assert.equal(resolveRunUser('4242', files, at), { uid: 4242, gid: 0, additionalGids: [] });
  assert.equal(resolveRunUser('4242', {}, at), { uid: 4242, gid: 0, additionalGids: [] });
});

test('USER with a group: that group only, by name or number', () => {
  assert.equal(resolveRunUser('app:wheel', files, at), { uid: 1000, gid: 10, additionalGids: [] });
  assert.equal(resolveRunUser('1234:4321', {}, at), { uid: 1234, gid: 4321, additionalGids: [] });
  assert.equal(resolveRunUser('svc:0', files, at), { uid: 999, gid: 0, additionalGids: [] });
});

test('unknown user or group names: RUN_USER at the RUN line', () => {
  for (const spec of ['nobody2', 'app:nogroup2', '0:']) {
    try {
      resolveRunUser(spec, files, at);
      assert.unreachable(spec);
    } catch (e) {
      assert.instance(e, OcistackError, spec);
      assert.is((e as OcistackError).code, 'RUN_USER', spec);
      assert.equal((e as OcistackError).location, at);
    }
  }
});

test('account files are read inside the rootfs: an absolute symlink does not reach the host', () => {
  const root = makeTempDir('accounts');
  fs.mkdirSync(join(root, 'etc'));
  fs.mkdirSync(join(root, 'data'));
  fs.writeFileSync(join(root, 'data', 'passwd'), 'app:x:77:77::/:/bin/sh\n');
  // Points at the host's /etc/group; inside the rootfs that is /etc/group itself (missing).
  fs.symlinkSync('/etc/group', join(root, 'etc', 'group'));
  fs.symlinkSync('/data/passwd', join(root, 'etc', 'passwd'));
  const f = readAccountFiles(root);
  assert.is(f.passwd, 'app:x:77:77::/:/bin/sh\n');
  assert.is(f.group, undefined);
});

test('subordinate ids: by name or uid, first valid range, none for others', () => {
  const text = '# comment\nalice:100000:65536\n1001:200000:1000\nbob:x:1\nbob:300000:0\n';
  assert.equal(parseSubIds(text, 'alice', 1000), { start: 100000, count: 65536 });
  assert.equal(parseSubIds(text, 'carol', 1001), { start: 200000, count: 1000 });
  assert.is(parseSubIds(text, 'bob', 1002), undefined);
  assert.is(parseSubIds('', 'alice', 1000), undefined);
});

test.run();
