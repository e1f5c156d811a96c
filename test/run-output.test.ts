/**
 * RunOutput: a RUN's output chunks as line events and the last lines kept
 * for RUN_FAILED. Chunks come from a real child process's pipes here, cut
 * at awkward places on purpose (inside a UTF-8 character, inside a line).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { RunOutput, MAX_LINE_CHARS } from '../lib/engine/run-output.js';
import type { ProgressEvent } from '../lib/progress/events.js';

function collect(): { events: Extract<ProgressEvent, { type: 'output' }>[]; listener: (e: ProgressEvent) => void } {
  const events: Extract<ProgressEvent, { type: 'output' }>[] = [];
  return { events, listener: (e) => { if (e.type === 'output') events.push(e); } };
}

test('a UTF-8 character cut between chunks stays whole; CRLF loses its CR', () => {
  const c = collect();
  const out = new RunOutput('#2', c.listener);
  const bytes = Buffer.from('grüße\r\nok\n', 'utf8');
  const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of ü
  out.onOutput('stdout', bytes.subarray(0, cut));
  out.onOutput('stdout', bytes.subarray(cut));
  out.flush();
  assert.equal(c.events.map((e) => e.line), ['grüße', 'ok']);
});

test('a line without newline longer than the limit is sent in pieces, the rest at flush', () => {
  const c = collect();
  const out = new RunOutput('#2', c.listener);
  const long = 'x'.repeat(MAX_LINE_CHARS * 2 + 5);
  for (let i = 0; i < long.length; i += 1000) out.onOutput('stderr', Buffer.from(long.slice(i, i + 1000)));
  assert.equal(c.events.map((e) => e.line.length), [MAX_LINE_CHARS, MAX_LINE_CHARS]);
  out.flush();
  assert.equal(c.events.map((e) => e.line.length), [MAX_LINE_CHARS, MAX_LINE_CHARS, 5]);
  assert.ok(c.events.every((e) => e.stream === 'stderr' && e.id === '#2'));
});

test('output of a real process: every line once, in order per stream, the last 10 arrived kept', async () => {
  const c = collect();
  const out = new RunOutput('#5', c.listener, 10);
  const child = spawn('/bin/sh', ['-c', 'i=1; while [ $i -le 40 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; printf tail']);
  child.stdout.on('data', (d: Buffer) => out.onOutput('stdout', d));
  child.stderr.on('data', (d: Buffer) => out.onOutput('stderr', d));
  await new Promise((r) => child.on('close', r));
  out.flush();
  const stdout = c.events.filter((e) => e.stream === 'stdout').map((e) => e.line);
  const stderr = c.events.filter((e) => e.stream === 'stderr').map((e) => e.line);
  assert.equal(stdout, [...Array.from({ length: 40 }, (_, i) => `out ${i + 1}`), 'tail']);
  assert.equal(stderr, Array.from({ length: 40 }, (_, i) => `err ${i + 1}`));
  const last = out.lastLines();
  assert.is(last.length, 10);
  assert.is(last.at(-1), 'tail');
  // The two pipes interleave as they arrive; the kept lines are the last 10 events in that order.
  assert.equal(last, c.events.slice(-10).map((e) => e.line));
});

test.run();
