/**
 * The `ocistack` bin itself: every command is reachable and has --help,
 * unknown commands and flags are usage errors (exit 2), and the issue's
 * air-gap path `ocistack copy docker-archive:x.tar docker://REG/giteaadmin/x:1`
 * works through the real bin against a TLS registry with auth.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { ocistack } from './helpers/cli.js';
import { withRegistry } from './helpers/registry.js';
import { busyboxLayout, runImage } from './helpers/images.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';

const COMMANDS = ['stack', 'build', 'plan', 'push', 'pull', 'copy', 'login', 'logout', 'cache'];

test('ocistack --help lists every command; each has --help; unknown command exits 2', async () => {
  const top = await ocistack(['--help']);
  assert.is(top.code, 0);
  for (const c of COMMANDS) {
    assert.match(top.stdout, new RegExp(`^  ${c} `, 'm'));
    const h = await ocistack([c, '--help']);
    assert.is(h.code, 0, `${c} --help`);
    assert.match(h.stdout, new RegExp(`Usage: ocistack ${c}`));
  }
  const bad = await ocistack(['frobnicate']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /unknown command "frobnicate"/);
  const none = await ocistack([]);
  assert.is(none.code, 2);
  const flag = await ocistack(['copy', '--bogus', 'a', 'b']);
  assert.is(flag.code, 2);
  assert.match(flag.stderr, /unknown flag --bogus/);
});

test('ocistack copy docker-archive:x.tar docker://REG/giteaadmin/x:1 through the bin, then runc runs it', async () => {
  const reg = await withRegistry('token');
  const work = makeTempDir('cli-copy');
  const layout = await busyboxLayout();
  const archive = join(work, 'x.tar');
  await runOk(requireTool('skopeo'), ['copy', '--quiet', `oci:${layout.dir}:${layout.tag}`, `docker-archive:${archive}:x:1`]);
  const dest = `${reg.host}/giteaadmin/x:1`;
  const r = await ocistack(['copy', `docker-archive:${archive}`, `docker://${dest}`, '--ca-file', reg.caFile, '--creds', reg.username!, '--cache-dir', join(work, 'cache')], { input: `${reg.password}\n` });
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(r.stderr.includes(reg.password!));
  const run = await runImage(dest, { registry: reg, args: ['echo', 'seeded'] });
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'seeded\n');
});

test('build -t REF then push REF (docker style) and push local:REF to another name; unknown local image is a clear error', async () => {
  const reg = await withRegistry('htpasswd');
  const work = makeTempDir('cli-local');
  const cache = join(work, 'cache');
  const ctx = join(work, 'ctx');
  mkdirSync(ctx);
  copyFileSync('/bin/busybox', join(ctx, 'busybox'));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\nCMD ["echo", "built-then-pushed"]\n');
  const ref = `${reg.host}/giteaadmin/later:1`;
  const flags = ['--ca-file', reg.caFile, '--creds', `${reg.username}:${reg.password}`, '--cache-dir', cache];
  const b = await ocistack(['build', ctx, '-t', ref, '--cache-dir', cache, '--progress', 'quiet']);
  assert.is(b.code, 0, b.stderr);
  const digest = b.stdout.trim();
  // Nothing was pushed by build.
  const p1 = await ocistack(['push', ref, ...flags]);
  assert.is(p1.code, 0, p1.stderr);
  assert.is(p1.stdout.trim(), digest, 'push REF sends the manifest build -t REF made');
  const run = await runImage(ref, { registry: reg });
  assert.is(run.stdout, 'built-then-pushed\n', run.stderr);
  const other = `${reg.host}/giteaadmin/renamed:2`;
  const p2 = await ocistack(['push', `local:${ref}`, other, ...flags]);
  assert.is(p2.code, 0, p2.stderr);
  assert.is(p2.stdout.trim(), digest);
  const missing = await ocistack(['push', `${reg.host}/giteaadmin/never-built:1`, ...flags]);
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /no image named .*never-built:1 in the build cache/);
  assert.match(missing.stderr, /ocistack build -t/);
});

test.run();
