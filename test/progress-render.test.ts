/**
 * The progress renderers on scripted event sequences with a fake clock and a
 * fake timer: plain (one line per event, durations), json (the versioned v1
 * shape), rawjson (events as they are), quiet, and the tty renderer, whose
 * output is replayed through a small screen model (cursor up, clear to end)
 * to check what a terminal shows, at width 100 and 40, with and without
 * colour. The real-terminal test is progress-tty.test.ts.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { colorAllowed, createRenderer } from '../lib/progress/render.js';
import { TtyRenderer, SHOW_CURSOR } from '../lib/progress/tty.js';
import { formatPlain, stepTitle } from '../lib/progress/format.js';
import { prefixEvent } from '../lib/stack/progress-prefix.js';
import type { ProgressEvent } from '../lib/progress/events.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const BLOB = `sha256:${'cd'.repeat(32)}`;

function sink(isTTY = false, columns = 100) {
  let buf = '';
  const out = { isTTY, columns, write: (s: string) => ((buf += s), true) };
  return { out, stream: out as unknown as NodeJS.WritableStream, text: () => buf };
}

/** A build: a cached step, a COPY, a RUN with output, a pull with bytes, a warning, and the summary. */
const build: ProgressEvent[] = [
  { type: 'warning', message: 'FROM without a platform', location: { file: 'Dockerfile', line: 1 } },
  { type: 'step', id: '#1', stage: 'build', name: '[build] WORKDIR /app', status: 'start', index: 1, total: 3 },
  { type: 'step', id: '#1', stage: 'build', name: '[build] WORKDIR /app', status: 'cached', index: 1, total: 3, durationMs: 1 },
  { type: 'step', id: '#2', stage: 'build', name: '[build] COPY . /app', status: 'start', index: 2, total: 3 },
  { type: 'blob', id: 'b', action: 'pull', digest: BLOB, current: 0, total: 4096 },
  { type: 'blob', id: 'b', action: 'pull', digest: BLOB, current: 2048, total: 4096 },
  { type: 'blob', id: 'b', action: 'pull', digest: BLOB, current: 4096, total: 4096, done: true },
  { type: 'step', id: '#2', stage: 'build', name: '[build] COPY . /app', status: 'done', index: 2, total: 3, durationMs: 412 },
  { type: 'step', id: '#3', stage: 'build', name: '[build] RUN make', status: 'start', index: 3, total: 3 },
  { type: 'output', id: '#3', stream: 'stdout', line: 'compiling' },
  { type: 'output', id: '#3', stream: 'stderr', line: 'warn: \x1b[31mred\x1b[0m' },
  { type: 'step', id: '#3', stage: 'build', name: '[build] RUN make', status: 'done', index: 3, total: 3, durationMs: 2500 },
  { type: 'build', digest: DIGEST, durationMs: 3200, steps: 3, cached: 1 },
];

test('step titles: [stage n/m] with a position, the name as it is without one', () => {
  assert.is(stepTitle({ name: '[build] COPY . /app', index: 2, total: 5 }), '[build 2/5] COPY . /app');
  assert.is(stepTitle({ name: '[0] COPY . /app', index: 1, total: 1 }), '[stage-0 1/1] COPY . /app', 'an unnamed stage as BuildKit names it');
  assert.is(stepTitle({ name: '[build] COPY . /app' }), '[build] COPY . /app');
  assert.is(stepTitle({ name: 'pull busybox' }), 'pull busybox');
});

test('plain: one line per event with durations, CACHED, output by step id, blobs by quarter, the summary', () => {
  const s = sink();
  const r = createRenderer('plain', s.stream);
  for (const e of build) r(e);
  r.finish();
  assert.is(
    s.text(),
    [
      'warning: Dockerfile:1: FROM without a platform',
      '#1 [build 1/3] WORKDIR /app',
      '#1 CACHED',
      '#2 [build 2/3] COPY . /app',
      `pull cdcdcdcdcdcd 0B/4.0KiB`,
      `pull cdcdcdcdcdcd 2.0KiB/4.0KiB`,
      `pull cdcdcdcdcdcd done 4.0KiB/4.0KiB`,
      '#2 DONE 0.4s',
      '#3 [build 3/3] RUN make',
      '#3 compiling',
      '#3 warn: red',
      '#3 DONE 2.5s',
      `built in 3.2s, 3 steps (1 cached) ${DIGEST}`,
      '',
    ].join('\n'),
  );
  assert.not.ok(s.text().includes('\x1b'), 'a program\'s escape codes are not copied into the log');
});

test('plain: an error says the step id, its duration and the message; no position falls back to the name', () => {
  const s = sink();
  const r = createRenderer('plain', s.stream);
  r({ type: 'step', id: '#4', name: 'pull busybox', status: 'start' });
  r({ type: 'step', id: '#4', name: 'pull busybox', status: 'error', error: 'not found', durationMs: 300 });
  assert.is(s.text(), '#4 pull busybox\n#4 ERROR 0.3s: not found\n');
});

test('auto is plain without escape codes when the stream is not a terminal', () => {
  const s = sink(false);
  const r = createRenderer('auto', s.stream);
  for (const e of build) r(e);
  r.finish();
  assert.not.ok(s.text().includes('\x1b'));
  assert.match(s.text(), /^#2 DONE 0\.4s$/m);
});

test('json: one v1 object per line with time and type, fields by name; rawjson: the events as they are', () => {
  const s = sink();
  let t = Date.UTC(2026, 0, 2, 3, 4, 5);
  const r = createRenderer('json', s.stream, { now: () => (t += 10) });
  for (const e of build) r(e);
  const lines = s.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.is(lines.length, build.length);
  for (const l of lines) {
    assert.is(l.v, 1);
    assert.match(String(l.time), /^2026-01-02T03:04:05\.\d{3}Z$/);
  }
  assert.equal(lines[0], { v: 1, time: '2026-01-02T03:04:05.010Z', type: 'warning', message: 'FROM without a platform', file: 'Dockerfile', line: 1 });
  assert.equal(lines[7], { v: 1, time: lines[7]!.time, type: 'step', id: '#2', stage: 'build', name: '[build] COPY . /app', index: 2, total: 3, status: 'done', durationMs: 412 });
  assert.equal(lines[4], { v: 1, time: lines[4]!.time, type: 'blob', id: 'b', action: 'pull', digest: BLOB, current: 0, total: 4096, done: false });
  assert.equal(lines[12], { v: 1, time: lines[12]!.time, type: 'build', digest: DIGEST, durationMs: 3200, steps: 3, cached: 1 });

  const raw = sink();
  const rr = createRenderer('rawjson', raw.stream);
  for (const e of build) rr(e);
  assert.equal(raw.text().trim().split('\n').map((l) => JSON.parse(l)), build);
});

test('quiet prints nothing, not even warnings', () => {
  const s = sink(true);
  const r = createRenderer('quiet', s.stream);
  for (const e of build) r(e);
  r.finish();
  assert.is(s.text(), '');
});

/**
 * What a terminal shows after `text`: lines, with the renderer's cursor-up
 * + clear-to-end applied; colour codes kept or dropped.
 */
function screen(text: string, keepColour = false): string[] {
  const lines: string[] = [''];
  const re = /\r\x1b\[(\d+)A\x1b\[J|\x1b\[\?25[lh]|(\x1b\[[0-9;]*m)|\n|([^\n\x1b]+)/g;
  for (const m of text.matchAll(re)) {
    if (m[1]) {
      lines.splice(lines.length - 1 - Number(m[1]));
      lines.push('');
    } else if (m[2]) {
      if (keepColour) lines[lines.length - 1] += m[2];
    } else if (m[0] === '\n') lines.push('');
    else if (m[3]) lines[lines.length - 1] += m[3];
  }
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function fakeTimer() {
  let fn: (() => void) | undefined;
  let started = 0;
  let stopped = 0;
  return {
    every: (_ms: number, f: () => void) => ((fn = f), started++, () => ((fn = undefined), stopped++)),
    fire: () => fn?.(),
    counts: () => ({ started, stopped, running: fn !== undefined }),
  };
}

test('tty: a running step shows a live timer and its last output lines; finished steps are printed once with CACHED or their duration', () => {
  const s = sink(true, 100);
  let t = 1000;
  const timer = fakeTimer();
  const r = new TtyRenderer(s.out, { now: () => t, every: timer.every, outputLines: 2 });
  for (const e of build.slice(0, 9)) r.handle(e);
  t += 1200;
  timer.fire();
  let view = screen(s.text());
  assert.match(view[view.length - 1]!, /^#3 \[build 3\/3\] RUN make +1\.2s$/, 'the running step with its timer at the right edge');
  assert.is(view[view.length - 1]!.length, 99, 'right-aligned to the width less one column');
  for (const line of ['one', 'two', 'three']) {
    t += 150;
    r.handle({ type: 'output', id: '#3', stream: 'stdout', line });
  }
  t += 450;
  timer.fire();
  view = screen(s.text());
  assert.match(view[view.length - 3]!, /^#3 \[build 3\/3\] RUN make +2\.1s$/);
  assert.equal(view.slice(-2), ['  two', '  three'], 'the last two lines under the step');
  assert.equal(view.slice(0, 4).map((l) => l.replace(/ +/g, ' ')), [
    'warning: Dockerfile:1: FROM without a platform',
    '#1 [build 1/3] WORKDIR /app CACHED',
    'pull cdcdcdcdcdcd done 4.0KiB/4.0KiB',
    '#2 [build 2/3] COPY . /app 0.4s',
  ]);
  for (const e of build.slice(11)) r.handle(e);
  r.finish();
  view = screen(s.text());
  assert.equal(view.map((l) => l.replace(/ +/g, ' ')), [
    'warning: Dockerfile:1: FROM without a platform',
    '#1 [build 1/3] WORKDIR /app CACHED',
    'pull cdcdcdcdcdcd done 4.0KiB/4.0KiB',
    '#2 [build 2/3] COPY . /app 0.4s',
    '#3 [build 3/3] RUN make 2.5s',
    'built in 3.2s, 3 steps (1 cached) sha256:abababababab',
  ], 'the final frame: nothing live left, the summary last');
  assert.is(s.text().split('#2 [build 2/3] COPY').length - 1, 3, 'a finished step is printed once (two live frames before)');
  assert.ok(s.text().endsWith(SHOW_CURSOR), 'the cursor is shown again');
  assert.ok(s.text().startsWith('warning') && s.text().includes('\x1b[?25l'), 'hidden while the live area is drawn');
  assert.equal(timer.counts(), { started: 1, stopped: 1, running: false });
  assert.not.match(s.text(), /\x1b\[[0-9;]*m/, 'no colour unless asked');
});

test('tty: a transfer bar with bytes/total while a blob moves; updates closer than 100 ms wait for the tick', () => {
  const s = sink(true, 100);
  let t = 0;
  const timer = fakeTimer();
  const r = new TtyRenderer(s.out, { now: () => t, every: timer.every });
  r.handle({ type: 'step', id: '#1', name: 'pull busybox', status: 'start' });
  r.handle({ type: 'blob', id: 'b', action: 'pull', digest: BLOB, current: 1024 * 1024, total: 4 * 1024 * 1024 });
  const before = s.text().length;
  t += 50;
  r.handle({ type: 'blob', id: 'b', action: 'pull', digest: BLOB, current: 2 * 1024 * 1024, total: 4 * 1024 * 1024 });
  assert.is(s.text().length, before, 'not drawn yet');
  t += 150;
  timer.fire();
  const view = screen(s.text());
  assert.match(view[0]!, /^#1 pull busybox +0\.2s$/, `no position: the name after the #id\n${view.join('\n')}`);
  assert.match(view[1]!, /^pull cdcdcdcdcdcd \[={15}> {14}\] +2\.0MiB\/4\.0MiB$/);
  r.handle({ type: 'step', id: '#1', name: 'pull busybox', status: 'error', error: 'unauthorized\nhint: log in', durationMs: 150 });
  r.finish();
  assert.equal(screen(s.text()).map((l) => l.replace(/ +/g, ' ')), ['#1 pull busybox ERROR 0.1s', '#1 error: unauthorized', '#1 error: hint: log in']);
});

test('tty: an error keeps the failing step\'s last output; Ctrl-C (finish while running) prints running steps as CANCELED', () => {
  const s = sink(true, 80);
  let t = 0;
  const r = new TtyRenderer(s.out, { now: () => t });
  r.handle({ type: 'step', id: '#5', name: '[0] RUN false', status: 'start', index: 1, total: 2 });
  r.handle({ type: 'output', id: '#5', stream: 'stderr', line: 'make: *** [all] Error 1' });
  r.handle({ type: 'step', id: '#6', name: '[1] RUN sleep 9', status: 'start', index: 1, total: 1 });
  t += 700;
  r.handle({ type: 'step', id: '#5', name: '[0] RUN false', status: 'error', error: 'exit code 1', durationMs: 700 });
  r.finish();
  r.finish();
  r.handle({ type: 'info', message: 'after the end' });
  assert.equal(screen(s.text()).map((l) => l.replace(/ +/g, ' ')), [
    '#5 [stage-0 1/2] RUN false ERROR 0.7s',
    ' make: *** [all] Error 1',
    '#5 error: exit code 1',
    '#6 [stage-1 1/1] RUN sleep 9 CANCELED 0.7s',
  ]);
  assert.is(s.text().split(SHOW_CURSOR).length - 1, 1, 'the cursor is shown once');
});

test('tty at width 40: every line fits in 39 columns, long names are cut with …, the timer stays visible', () => {
  const s = sink(true, 40);
  let t = 0;
  const timer = fakeTimer();
  const r = new TtyRenderer(s.out, { now: () => t, every: timer.every });
  for (const e of build.slice(0, 9)) r.handle(e);
  r.handle({ type: 'step', id: '#9', name: '[build] COPY a-very-long-source-name.txt /some/long/destination/path', status: 'start', index: 9, total: 9 });
  r.handle({ type: 'output', id: '#3', stream: 'stdout', line: 'x'.repeat(200) });
  r.handle({ type: 'blob', id: 'c', action: 'push', digest: DIGEST, current: 5, total: 10 });
  t += 3000;
  timer.fire();
  const live = screen(s.text());
  for (const l of live) assert.ok([...l].length <= 39, `${JSON.stringify(l)} is ${l.length} columns`);
  assert.ok(live.some((l) => /^#9 \[build 9\/9\] COPY a-very-long-s… +3\.0s$/.test(l)), live.join('\n'));
  assert.ok(live.some((l) => /^  x+…$/.test(l)));
  assert.ok(live.some((l) => l.startsWith('push abababababab') && l.endsWith('5B/10B')));
  r.handle({ type: 'build', digest: DIGEST, durationMs: 3000, steps: 9, cached: 1 });
  r.finish();
  const end = screen(s.text());
  for (const l of end) assert.ok([...l].length <= 39, l);
  assert.match(end[end.length - 1]!, /^built in 3\.0s, 9 steps \(1 cached\) sha2…$/);
});

test('tty colours: on when asked (CACHED/DONE blue, ERROR red, warnings yellow, summary green), never for NO_COLOR', () => {
  const colored = sink(true, 100);
  const r = new TtyRenderer(colored.out, { now: () => 0, color: true });
  for (const e of build) r.handle(e);
  r.handle({ type: 'step', id: '#7', name: 'x', status: 'start' });
  r.handle({ type: 'step', id: '#7', name: 'x', status: 'error', error: 'e' });
  r.finish();
  const view = screen(colored.text(), true);
  assert.ok(view.some((l) => l.startsWith('\x1b[34m#1 [build 1/3] WORKDIR /app') && l.endsWith('CACHED\x1b[0m')), view.join('\n'));
  assert.ok(view.some((l) => l.startsWith('\x1b[33mwarning:')));
  assert.ok(view.some((l) => l.startsWith('\x1b[31m#7 x')));
  assert.ok(view.some((l) => l.startsWith('\x1b[32mbuilt in 3.2s')));
  // Width counts the text, not the escape codes.
  for (const l of view) assert.ok(l.replace(/\x1b\[[0-9;]*m/g, '').length <= 99);

  assert.is(colorAllowed({ NO_COLOR: '1' }, true), false);
  assert.is(colorAllowed({ NO_COLOR: '1', FORCE_COLOR: '1' }, true), false, 'NO_COLOR wins');
  assert.is(colorAllowed({ NO_COLOR: '' }, true), true, 'an empty NO_COLOR is not set (no-color.org)');
  assert.is(colorAllowed({ FORCE_COLOR: '1' }, false), true);
  assert.is(colorAllowed({ FORCE_COLOR: '0' }, true), false);
  assert.is(colorAllowed({}, false), false);
  assert.is(colorAllowed({ TERM: 'dumb' }, true), false);

  const plainTty = sink(true, 100);
  const p = createRenderer('tty', plainTty.stream, { color: colorAllowed({ NO_COLOR: '1' }, true), now: () => 0, every: fakeTimer().every });
  for (const e of build) p(e);
  p.finish();
  assert.not.match(plainTty.text(), /\x1b\[[0-9;]*m/, 'no SGR code at all with NO_COLOR');
});

test('tty: escape codes and tabs in RUN output never reach the terminal (they would move the cursor)', () => {
  const s = sink(true, 100);
  let t = 0;
  const r = new TtyRenderer(s.out, { now: () => (t += 200) });
  r.handle({ type: 'step', id: '#1', name: 'RUN x', status: 'start' });
  r.handle({ type: 'output', id: '#1', stream: 'stdout', line: '\x1b[2J\x1b[Hcleared\tcol\rback\x07' });
  r.finish();
  const stripped = s.text().replace(/\r\x1b\[\d+A\x1b\[J|\x1b\[\?25[lh]/g, '');
  assert.not.ok(stripped.includes('\x1b'), JSON.stringify(stripped));
  assert.ok(stripped.includes('  cleared  colback'));
});

test('stacks: the build event of an image is named by it in every renderer', () => {
  const e = prefixEvent('web', { type: 'build', digest: DIGEST, durationMs: 1000, steps: 2, cached: 2 });
  assert.is(formatPlain(e), `[web] built in 1.0s, 2 steps (2 cached) ${DIGEST}`);
});

test.run();
