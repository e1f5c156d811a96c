/**
 * `ocistack plan` on the multi-stage fixture: text, json and ast output,
 * --target pruning, --build-arg, and its errors.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { PassThrough } from 'node:stream';
import { command } from '../lib/cli/commands/plan.js';
import type { CliIO } from '../lib/cli/types.js';
import { OcistackError, UsageError } from '../lib/errors.js';
import { repoRoot } from './conformance/dir.js';

async function plan(argv: string[]): Promise<{ code: number; out: string }> {
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  const io: CliIO = { stdout, stderr: new PassThrough(), stdin: new PassThrough(), env: { FROM_ENV: 'e' }, cwd: repoRoot() };
  const code = await command.run(argv, io);
  return { code, out };
}

test('text: stages, build order, skipped stage, warnings', async () => {
  const { code, out } = await plan(['fixtures/multistage', '--build-arg', 'VERSION=2.0', '--build-arg', 'NOPE=1']);
  assert.is(code, 0);
  assert.match(out, /fixtures\/multistage\/Dockerfile: 5 stages, target 4 \(final\)/);
  assert.match(out, /build order: 0 \(base\) -> 1 \(sources\) -> 2 \(config\) -> 4 \(final\)/);
  assert.match(out, /global ARGs: BASE=busybox VERSION=2\.0/);
  assert.match(out, /stage 3 \(test\) \[skipped/);
  assert.match(out, /needs: 1 \(sources\), 2 \(config\)/);
  assert.match(out, /build-args \[NOPE\] were not consumed/);
});

test('--target prunes to what the target needs', async () => {
  const { out } = await plan(['fixtures/multistage', '--target', 'sources']);
  assert.match(out, /build order: 0 \(base\) -> 1 \(sources\)\n/);
  assert.match(out, /stage 4 \(final\) \[skipped/);
});

test('--format json is the BuildPlan', async () => {
  const { out } = await plan(['-f', 'fixtures/multistage/Dockerfile', '--format', 'json']);
  const p = JSON.parse(out) as { target: number; order: number[]; stages: { name?: string; base: unknown }[] };
  assert.is(p.target, 4);
  assert.equal(p.order, [0, 1, 2, 4]);
  assert.equal(p.stages[0]!.base, { kind: 'image', ref: 'busybox' });
  assert.equal(p.stages[1]!.base, { kind: 'stage', index: 0 });
});

test('--format ast prints BuildKit\'s dump', async () => {
  const { out } = await plan(['fixtures/multistage', '--format', 'ast']);
  assert.ok(out.startsWith('(arg "BASE=busybox")\n(arg "VERSION=1.0.0")\n(from "${BASE}" "AS" "base")\n'));
});

test('--build-arg K takes the value from the environment', async () => {
  const { out } = await plan(['fixtures/multistage', '--build-arg', 'BASE', '--build-arg', 'FROM_ENV']);
  assert.match(out, /global ARGs: BASE=busybox/, 'BASE is not in the environment: default kept');
  assert.match(out, /\[FROM_ENV\] were not consumed/);
});

test('errors: unknown target, missing file, bad format', async () => {
  await plan(['fixtures/multistage', '--target', 'finall']).then(
    () => assert.unreachable(),
    (e: unknown) => {
      assert.instance(e, OcistackError);
      assert.match((e as OcistackError).hint!, /final/);
    },
  );
  await plan(['fixtures/nope']).then(
    () => assert.unreachable(),
    (e: unknown) => {
      assert.instance(e, OcistackError);
      assert.is((e as OcistackError).code, 'DOCKERFILE_NOT_FOUND');
    },
  );
  await plan(['--format', 'yaml']).then(
    () => assert.unreachable(),
    (e: unknown) => assert.instance(e, UsageError),
  );
});

test.run();
