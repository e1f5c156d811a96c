/**
 * `--insecure` is for the push targets only, end to end through the bin:
 * a build FROM registry B, whose certificate this machine does not trust,
 * pushing to registry A with --insecure, must fail with a TLS error naming B
 * (and push nothing to A). The same build trusting B's CA (--ca-file) works,
 * so the failure is B's certificate and nothing else.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ocistack } from './helpers/cli.js';
import { busyboxBase } from './helpers/images.js';
import { startRegistry, skopeoInspectArgs, type TestRegistry } from './helpers/registry.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';

const started: TestRegistry[] = [];

async function tagExists(reg: TestRegistry, ref: string): Promise<boolean> {
  const r = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${ref}`]);
  return r.code === 0;
}

test('--insecure for the push target leaves the base registry\'s untrusted certificate failing', async () => {
  // Two registries on two ports of localhost; their certificates come from the test CA,
  // which the ocistack process does not trust unless told (--ca-file).
  const a = await startRegistry({ auth: 'htpasswd' });
  started.push(a);
  const b = await startRegistry({ auth: 'none' });
  started.push(b);
  assert.is.not(a.host, b.host);
  const base = await busyboxBase(b, 'library/busybox', 'base');
  const ctx = makeTempDir('insecure-ctx');
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY hello.txt /hello.txt\n`);
  writeFileSync(join(ctx, 'hello.txt'), 'hello\n');
  const target = `${a.host}/giteaadmin/insecure-scope:1`;
  const common = ['build', ctx, '-t', target, '--push', '--insecure', '--creds', `${a.username}:${a.password}`, '--progress', 'plain'];

  const bad = await ocistack(common);
  assert.is(bad.code, 1, `must fail on B's certificate:\n${bad.stderr}`);
  assert.ok(bad.stderr.includes(b.host), `the error names registry B (${b.host}):\n${bad.stderr}`);
  assert.match(bad.stderr, /certificate|TLS|x509/i);
  assert.not.ok(bad.stderr.includes(a.password!), 'the password is not printed');
  assert.not.ok(await tagExists(a, target), 'nothing was pushed to A');

  // Control: trusting B's CA (it is the test CA) the same build goes through.
  const good = await ocistack([...common, '--ca-file', b.caFile]);
  assert.is(good.code, 0, good.stderr);
  assert.ok(await tagExists(a, target), 'the image is on A');
});

test.after(async () => {
  for (const r of started) await r.stop().catch(() => undefined);
});

test.run();
