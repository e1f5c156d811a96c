/**
 * Progress renderers: plain lines for logs, JSON lines for tools, and the
 * live tty renderer `auto` picks on a terminal (redraws in place with ANSI
 * cursor-up + clear, prints each finished step once, fits the width).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { createRenderer } from '../lib/progress/render.js';
import { createTtyRenderer } from '../lib/progress/tty.js';
import type { ProgressEvent } from '../lib/progress/events.js';

function sink(isTTY: boolean, columns = 60): { out: { isTTY: boolean; columns: number; write(s: string): boolean }; text(): string } {
  let buf = '';
  return { out: { isTTY, columns, write: (s: string) => ((buf += s), true) }, text: () => buf };
}

const steps: ProgressEvent[] = [
  { type: 'step', id: '#1', name: '[0] COPY a.txt /a.txt', status: 'start' },
  { type: 'blob', id: 'b', action: 'push', digest: `sha256:${'ab'.repeat(32)}`, current: 10, total: 100 },
  { type: 'step', id: '#1', name: '[0] COPY a.txt /a.txt', status: 'done' },
  { type: 'blob', id: 'b', action: 'push', digest: `sha256:${'ab'.repeat(32)}`, current: 100, total: 100, done: true },
  { type: 'warning', message: 'One or more build-args [X] were not consumed' },
  { type: 'step', id: '#2', name: '[0] WORKDIR /app', status: 'start' },
  { type: 'step', id: '#2', name: '[0] WORKDIR /app', status: 'error', error: 'boom' },
];

test('auto on a non-terminal is plain text without escape codes', () => {
  const s = sink(false);
  const r = createRenderer('auto', s.out as unknown as NodeJS.WritableStream);
  for (const e of steps) r(e);
  assert.not.ok(s.text().includes('\x1b['));
  assert.match(s.text(), /^#1 \[0\] COPY a\.txt \/a\.txt$/m);
  assert.match(s.text(), /^warning: One or more build-args/m);
  assert.match(s.text(), /^#2 ERROR \[0\] WORKDIR \/app: boom$/m);
});

test('auto on a terminal redraws a live area in place and prints finished steps once', () => {
  const s = sink(true);
  let t = 0;
  const r = createTtyRenderer(s.out, () => (t += 1000));
  for (const e of steps) r(e);
  const text = s.text();
  assert.ok(text.includes('\x1b[1A\r\x1b[J') || text.includes('\x1b[2A\r\x1b[J'), 'moves up over the live area and clears it');
  assert.is(text.split('#1 [0] COPY a.txt /a.txt DONE').length - 1, 1, 'a finished step is printed once');
  assert.match(text, /#2 ERROR \[0\] WORKDIR \/app: boom/);
  // What a terminal would show at the end: apply the cursor-up/clear sequences.
  const screen: string[] = [];
  for (const part of text.split(/(\x1b\[\d+A\r\x1b\[J)/)) {
    const up = /^\x1b\[(\d+)A\r\x1b\[J$/.exec(part);
    if (up) screen.splice(screen.length - Number(up[1]));
    else screen.push(...part.split('\n').filter((l) => l !== ''));
  }
  assert.equal(screen, [
    '#1 [0] COPY a.txt /a.txt DONE',
    'push abababababab done 100B/100B',
    'warning: One or more build-args [X] were not consumed',
    '#2 ERROR [0] WORKDIR /app: boom',
  ], 'nothing live is left on screen once every step and blob finished or failed');
});

test('tty lines are cut to the terminal width, and blob updates are throttled', () => {
  const s = sink(true, 30);
  let t = 0;
  const r = createTtyRenderer(s.out, () => t);
  r({ type: 'step', id: '#1', name: 'COPY a-very-long-source-name.txt /some/long/destination/path', status: 'start' });
  for (const l of s.text().split('\n')) assert.ok(l.replace(/\x1b\[[0-9]*[A-Z]|\r/g, '').length <= 29, l);
  const before = s.text().length;
  r({ type: 'blob', id: 'b', action: 'pull', digest: `sha256:${'cd'.repeat(32)}`, current: 1, total: 9 });
  assert.is(s.text().length, before, 'a blob update within 80 ms of the last draw is not drawn');
  t += 100;
  r({ type: 'blob', id: 'b', action: 'pull', digest: `sha256:${'cd'.repeat(32)}`, current: 2, total: 9 });
  assert.ok(s.text().length > before);
});

test('json mode writes one parseable event per line', () => {
  const s = sink(false);
  const r = createRenderer('json', s.out as unknown as NodeJS.WritableStream);
  for (const e of steps) r(e);
  const lines = s.text().trim().split('\n');
  assert.is(lines.length, steps.length);
  assert.equal(JSON.parse(lines[0]!), steps[0]);
});

test('RUN output: plain prints `#3 line` per line, json one event per line, tty prints them above the live area', () => {
  const run: ProgressEvent[] = [
    { type: 'step', id: '#3', name: '[0] RUN make', status: 'start' },
    { type: 'output', id: '#3', stream: 'stdout', line: 'hi' },
    { type: 'output', id: '#3', stream: 'stderr', line: '' },
    { type: 'output', id: '#3', stream: 'stderr', line: 'warn: x' },
    { type: 'step', id: '#3', name: '[0] RUN make', status: 'done' },
  ];
  const plain = sink(false);
  const p = createRenderer('plain', plain.out as unknown as NodeJS.WritableStream);
  for (const e of run) p(e);
  assert.is(plain.text(), '#3 [0] RUN make\n#3 hi\n#3 \n#3 warn: x\n#3 DONE\n');

  const json = sink(false);
  const j = createRenderer('json', json.out as unknown as NodeJS.WritableStream);
  for (const e of run) j(e);
  const lines = json.text().trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines[1], { type: 'output', id: '#3', stream: 'stdout', line: 'hi' });
  assert.is(lines.length, run.length);

  const tty = sink(true, 60);
  const t = createTtyRenderer(tty.out);
  for (const e of run.slice(0, 2)) t(e);
  // The output line is printed once, and the running step is drawn again below it.
  assert.match(tty.text(), /#3 hi\n#3 \[0\] RUN make \.\.\.\n$/);
});

test.run();
