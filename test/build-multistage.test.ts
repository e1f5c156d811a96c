/**
 * Multi-stage builds through the engine: stages built in graph order,
 * COPY --from a stage, heredoc COPY with expansion from the stage's ENV,
 * --target pruning (a RUN in an unneeded stage is never reached), ONBUILD
 * triggers of a base stage, and COPY --from an image in the registry.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withRegistry } from './helpers/registry.js';
import { busyboxBase, inspectOciLayout, runOciLayout } from './helpers/images.js';
import { makeTempDir } from './helpers/tools.js';
import { ocistack, REPO_ROOT } from './helpers/cli.js';

const MULTISTAGE = join(REPO_ROOT, 'fixtures', 'multistage');

test('fixtures/multistage: final stage gets files from two stages; the RUN stage is pruned', async () => {
  const reg = await withRegistry('none');
  const base = await busyboxBase(reg);
  const out = join(makeTempDir('ms'), 'layout');
  const r = await ocistack(['build', MULTISTAGE, '--build-arg', `BASE=${base}`, '--build-arg', 'VERSION=2.5.0', '--ca-file', reg.caFile, '-t', 'ms:1', '-o', `type=oci,dest=${out}`]);
  assert.is(r.code, 0, r.stderr);
  const img = await inspectOciLayout(out, '1');
  const cfg = img.config.config;
  assert.equal(cfg.Entrypoint, ['/app/run']);
  assert.equal(cfg.Cmd, ['--serve']);
  assert.is(cfg.Labels['org.opencontainers.image.version'], '2.5.0');
  assert.is(cfg.WorkingDir, '/app');
  // Final stage is FROM scratch: its layers are only its own COPYs (+ none for WORKDIR /app, which COPY created).
  assert.is(img.manifest.layers.length, 3);
  assert.not.ok(r.stderr.includes('self-test'), 'the test stage (with RUN) is not built');
});

test('ONBUILD triggers of a base stage run in the child; COPY --from an image ref; heredoc expands ENV', async () => {
  const reg = await withRegistry('none');
  const base = await busyboxBase(reg);
  const ctx = makeTempDir('onbuild');
  mkdirSync(join(ctx, 'data'));
  writeFileSync(join(ctx, 'data', 'a.txt'), 'A\n');
  writeFileSync(join(ctx, 'Dockerfile'), [
    `FROM ${base} AS parent`,
    'ONBUILD COPY data/a.txt /onbuild/a.txt',
    'ENV WHO=world',
    'FROM parent AS child',
    'COPY <<EOF /greeting',
    'hello ${WHO}',
    'EOF',
    `COPY --from=${base} /bin/busybox /copied/busybox`,
    'CMD ["sh", "-c", "cat /onbuild/a.txt /greeting; /copied/busybox echo copied-ok"]',
    '',
  ].join('\n'));
  const out = join(ctx, 'layout');
  const r = await ocistack(['build', ctx, '--ca-file', reg.caFile, '-t', 'child:1', '-o', `type=oci,dest=${out}`]);
  assert.is(r.code, 0, r.stderr);
  const img = await inspectOciLayout(out, '1');
  assert.not.ok(img.config.config.OnBuild, 'triggers are consumed, not inherited');
  const run = await runOciLayout(out, '1');
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'A\nhello world\ncopied-ok\n');
});

test('--target builds an intermediate stage; an unknown target is an error naming the stages', async () => {
  const reg = await withRegistry('none');
  const base = await busyboxBase(reg);
  const out = join(makeTempDir('target'), 'layout');
  const r = await ocistack(['build', MULTISTAGE, '--build-arg', `BASE=${base}`, '--ca-file', reg.caFile, '--target', 'config', '-t', 'cfg:1', '-o', `type=oci,dest=${out}`]);
  assert.is(r.code, 0, r.stderr);
  const run = await runOciLayout(out, '1', { args: ['cat', '/src/config.env'] });
  assert.is(run.stdout, 'VERSION=1.0.0\n');
  const bad = await ocistack(['build', MULTISTAGE, '--build-arg', `BASE=${base}`, '--ca-file', reg.caFile, '--target', 'nope']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /nope/);
  assert.match(bad.stderr, /base|sources|config|final/);
});

test.run();
