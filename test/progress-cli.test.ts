/**
 * The progress flags on the real bin (a COPY-only build FROM scratch, no
 * registry): `-q` prints the digest and nothing else, `plain` one line per
 * event with positions, durations and the summary, `json` the v1 shape
 * ending with the build event, `rawjson` the events as they are, and a bad
 * mode is a usage error. Progress is on stderr, the digest alone on stdout.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from './helpers/tools.js';
import { ocistack } from './helpers/cli.js';

let ctx: string;
let cache: string;

test.before(() => {
  ctx = makeTempDir('progress-cli');
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch AS app\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n');
  writeFileSync(join(ctx, 'a.txt'), 'a\n');
  writeFileSync(join(ctx, 'b.txt'), 'b\n');
  cache = makeTempDir('progress-cli-cache');
});

const DIGEST = /^sha256:[0-9a-f]{64}\n$/;

test('-q and --quiet: the digest on stdout, nothing on stderr (even with --progress plain)', async () => {
  for (const flags of [['-q'], ['--quiet'], ['--progress', 'plain', '-q']]) {
    const r = await ocistack(['build', ctx, '--no-cache', '--cache-dir', cache, ...flags]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, DIGEST);
    assert.is(r.stderr, '', flags.join(' '));
  }
});

test('plain: numbered steps, DONE with durations, the summary with the digest; stdout only the digest', async () => {
  const r = await ocistack(['build', ctx, '--no-cache', '--cache-dir', cache, '--progress', 'plain']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, DIGEST);
  const lines = r.stderr.trim().split('\n');
  assert.ok(lines.includes('#1 [app 1/2] COPY a.txt /a.txt'), r.stderr);
  assert.ok(lines.includes('#2 [app 2/2] COPY b.txt /b.txt'), r.stderr);
  assert.ok(lines.some((l) => /^#1 DONE \d+\.\ds$/.test(l)), r.stderr);
  const summary = lines.find((l) => l.startsWith('built in '));
  assert.match(summary ?? '', /^built in \d+\.\ds, 2 steps \(0 cached\) sha256:[0-9a-f]{64}$/, r.stderr);
  assert.is(summary!.split(' ').pop(), r.stdout.trim());
  assert.not.ok(r.stderr.includes('\x1b'), 'no escape codes when stderr is not a terminal (auto would pick plain too)');
});

test('auto on a pipe is plain', async () => {
  const r = await ocistack(['build', ctx, '--no-cache', '--cache-dir', cache], { env: { FORCE_COLOR: '' } });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /^#1 \[app 1\/2\] COPY a\.txt \/a\.txt$/m);
  assert.not.ok(r.stderr.includes('\x1b'));
});

test('plain on an unchanged rebuild: every step CACHED, the summary counts them', async () => {
  const own = makeTempDir('progress-cli-rebuild');
  for (const expectCached of [false, true]) {
    const r = await ocistack(['build', ctx, '--cache-dir', own, '--progress', 'plain']);
    assert.is(r.code, 0, r.stderr);
    assert.is(/^#1 CACHED$/m.test(r.stderr), expectCached, r.stderr);
    assert.is(/^#2 CACHED$/m.test(r.stderr), expectCached, r.stderr);
    assert.match(r.stderr, expectCached ? /2 steps \(2 cached\)/ : /2 steps/);
  }
});

test('json: every stderr line is a v1 object; steps start then done with durationMs; the build event has the digest', async () => {
  const r = await ocistack(['build', ctx, '--no-cache', '--cache-dir', cache, '--progress', 'json']);
  assert.is(r.code, 0, r.stderr);
  const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const e of events) {
    assert.is(e.v, 1);
    assert.ok(!Number.isNaN(Date.parse(String(e.time))), String(e.time));
  }
  const steps = events.filter((e) => e.type === 'step');
  assert.equal(steps.map((e) => [e.id, e.status]), [['#1', 'start'], ['#1', 'done'], ['#2', 'start'], ['#2', 'done']]);
  assert.equal(steps.filter((e) => e.status === 'start').map((e) => [e.index, e.total]), [[1, 2], [2, 2]], 'the position in the stage');
  assert.is(typeof steps[1]!.durationMs, 'number');
  const b = events.find((e) => e.type === 'build');
  assert.ok(b, r.stderr);
  assert.is(b!.digest, r.stdout.trim());
  assert.is(b!.steps, 2);
  assert.is(b!.cached, 0);
});

test('rawjson: the events as the library sends them (no v, no time)', async () => {
  const r = await ocistack(['build', ctx, '--no-cache', '--cache-dir', cache, '--progress', 'rawjson']);
  assert.is(r.code, 0, r.stderr);
  const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(events.every((e) => e.v === undefined && e.time === undefined));
  assert.equal(events[0], { type: 'step', id: '#1', stage: 'app', name: '[app] COPY a.txt /a.txt', status: 'start', index: 1, total: 2 });
});

test('an unknown mode is a usage error (exit 2) that lists the modes', async () => {
  const r = await ocistack(['build', ctx, '--no-cache', '--cache-dir', cache, '--progress', 'fancy']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--progress "fancy" is not a progress mode/);
  assert.match(r.stderr, /auto, tty, plain, json, rawjson, quiet/);
  assert.is(r.stdout, '');
});

test.run();
