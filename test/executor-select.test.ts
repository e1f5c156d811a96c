/**
 * Executor selection (issue 9): `--executor none|runc` and the default
 * (runc when a runc binary is on PATH, else none), through the real CLI and
 * through selectExecutor. "No runc" is a PATH without the machine's runc;
 * "runc" is the real runc the test setup installed.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { selectExecutor, findOnPath, importRuncExecutor } from '../lib/executor/select.js';
import { pathToFileURL } from 'node:url';
import { noExecutor } from '../lib/executor/none.js';
import { OcistackError } from '../lib/errors.js';
import { ocistack } from './helpers/cli.js';
import { makeTempDir, requireTool } from './helpers/tools.js';

function ctx(dockerfile: string): string {
  const dir = makeTempDir('exec-select-');
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  return dir;
}

/** A PATH with the usual tools but no runc: an empty directory. */
function pathWithoutRunc(): string {
  return makeTempDir('exec-select-path-');
}

test('findOnPath finds the real runc, and nothing in a PATH without it (or with only a non-executable file)', async () => {
  const runc = requireTool('runc');
  assert.is(await findOnPath('runc', { PATH: `${pathWithoutRunc()}:${dirname(runc)}` }), join(dirname(runc), 'runc'));
  const dir = pathWithoutRunc();
  writeFileSync(join(dir, 'runc'), '#!/bin/sh\n');
  chmodSync(join(dir, 'runc'), 0o644);
  mkdirSync(join(dir, 'sub', 'runc'), { recursive: true });
  assert.is(await findOnPath('runc', { PATH: `${dir}:${join(dir, 'sub')}:relative/dir` }), undefined);
  assert.is(await findOnPath('runc', {}), undefined);
});

test('selectExecutor: default is runc with runc on PATH, none without; names none/runc; unknown is a usage error', async () => {
  const runc = requireTool('runc');
  const withRunc = await selectExecutor(undefined, { PATH: dirname(runc) });
  assert.is(withRunc.name, 'runc');
  assert.is(await selectExecutor(undefined, { PATH: pathWithoutRunc() }), noExecutor);
  assert.is(await selectExecutor('none', { PATH: dirname(runc) }), noExecutor);
  assert.is((await selectExecutor('runc', { PATH: dirname(runc) })).name, 'runc');
  try {
    await selectExecutor('runc', { PATH: pathWithoutRunc() });
    assert.unreachable('runc without runc on PATH');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'RUNC_MISSING');
    assert.match((e as OcistackError).hint ?? '', 'apt-get install runc');
  }
  try {
    await selectExecutor('docker', {});
    assert.unreachable('unknown executor');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).exitCode, 2);
    assert.match((e as OcistackError).hint ?? '', 'none or runc');
  }
});

test('CLI without runc on PATH: a COPY-only build works; a RUN fails at its line saying how to install runc, nothing written', async () => {
  const env = { PATH: pathWithoutRunc() };
  const copy = ctx('FROM scratch\nCOPY a.txt /\n');
  const ok = await ocistack(['build', copy, '--cache-dir', makeTempDir('exec-select-cache-'), '-o', `type=oci,dest=${join(copy, 'out')}`], { env });
  assert.is(ok.code, 0, ok.stderr);
  assert.ok(existsSync(join(copy, 'out', 'index.json')));

  const run = ctx('FROM scratch\nCOPY a.txt /\nRUN echo hi\n');
  const bad = await ocistack(['build', run, '--cache-dir', makeTempDir('exec-select-cache-'), '-o', `type=oci,dest=${join(run, 'out')}`], { env });
  assert.is(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /Dockerfile:3/);
  assert.match(bad.stderr, /RUN needs an executor/);
  assert.match(bad.stderr, /apt-get install runc/);
  assert.not.ok(existsSync(join(run, 'out')));

  const explicit = await ocistack(['build', run, '--executor', 'runc', '-o', `type=oci,dest=${join(run, 'out')}`], { env });
  assert.is(explicit.code, 1, explicit.stderr);
  assert.match(explicit.stderr, /--executor runc: no runc binary on PATH/);
  assert.match(explicit.stderr, /apt-get install runc/);
  assert.not.ok(existsSync(join(run, 'out')));
});

test('the runc executor module is loaded by URL: missing module or export is EXECUTOR_MISSING; found, it gets the runc path', async () => {
  const dir = makeTempDir('exec-select-mod-');
  const missing = pathToFileURL(join(dir, 'runc', 'index.js')).href;
  for (const [url, what] of [[missing, 'missing module'], [pathToFileURL(join(dir, 'empty.mjs')).href, 'no export']] as const) {
    if (what === 'no export') writeFileSync(join(dir, 'empty.mjs'), 'export const x = 1;\n');
    try {
      await importRuncExecutor(url, '/usr/bin/runc');
      assert.unreachable(what);
    } catch (e) {
      assert.instance(e, OcistackError, String(e));
      assert.is((e as OcistackError).code, 'EXECUTOR_MISSING', what);
    }
  }
  // A module whose own import is missing is its bug, reported as it is (not as "not installed").
  writeFileSync(join(dir, 'broken.mjs'), "import './nope.mjs';\nexport function createRuncExecutor() {}\n");
  try {
    await importRuncExecutor(pathToFileURL(join(dir, 'broken.mjs')).href, '/usr/bin/runc');
    assert.unreachable('broken module');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ERR_MODULE_NOT_FOUND');
  }
  writeFileSync(join(dir, 'ok.mjs'), "export function createRuncExecutor(opts) { return { name: 'runc', opts, run: async () => ({ exitCode: 0 }) }; }\n");
  const ex = (await importRuncExecutor(pathToFileURL(join(dir, 'ok.mjs')).href, '/opt/bin/runc')) as unknown as { name: string; opts: unknown };
  assert.is(ex.name, 'runc');
  assert.equal(ex.opts, { runc: '/opt/bin/runc' });
});

test('CLI --allow security.insecure reaches the engine: refused without it, not refused with it', async () => {
  const env = { PATH: dirname(requireTool('runc')) };
  const run = ctx('FROM scratch\nRUN --security=insecure true\n');
  const cache = makeTempDir('exec-select-cache-');
  const refused = await ocistack(['build', run, '--executor', 'runc', '--cache-dir', cache], { env });
  assert.is(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /Dockerfile:2/);
  assert.match(refused.stderr, /--security=insecure is not allowed/);
  assert.match(refused.stderr, /--allow security\.insecure/);
  // Allowed, the step goes on to the executor (whatever it then does with `true` in an empty rootfs).
  const allowed = await ocistack(['build', run, '--executor', 'runc', '--allow', 'security.insecure', '--cache-dir', cache], { env });
  assert.not.match(allowed.stderr, /is not allowed/);
});

test('CLI usage: --executor NAME and --allow ENTITLEMENT are checked (exit 2) and in --help', async () => {
  const run = ctx('FROM scratch\nRUN echo hi\n');
  const a = await ocistack(['build', run, '--executor', 'docker']);
  assert.is(a.code, 2, a.stderr);
  assert.match(a.stderr, /unknown executor "docker"/);
  const b = await ocistack(['build', run, '--allow', 'network.host']);
  assert.is(b.code, 2, b.stderr);
  assert.match(b.stderr, /security\.insecure/);
  const h = await ocistack(['build', '--help']);
  assert.match(h.stdout, /--executor NAME/);
  assert.match(h.stdout, /--allow ENTITLEMENT/);
});

test.run();
