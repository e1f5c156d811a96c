/**
 * The live progress in a real terminal: tmux (a private server, -S in a temp dir) runs the
 * real bin building a busybox-based Dockerfile whose RUN (through runc)
 * prints lines and sleeps, and `capture-pane` reads what the terminal shows
 * while it runs and at the end. Checks the numbered step lines, the live
 * timer and the RUN output tail under the running step, the hidden and
 * restored cursor, the final summary, colours on a terminal and none with
 * NO_COLOR (`capture-pane -e` keeps colour codes), a 40-column pane where no
 * line wraps (`capture-pane -J` joins wrapped lines: both captures must be
 * the same), and Ctrl-C (send-keys C-c) leaving a final frame. Nothing is
 * asserted on wall time: the sleep only gives the captures time to see the
 * running state. (CACHED on a rebuild needs the instruction cache; the
 * unit tests in progress-render.test.ts cover how it is shown.)
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase } from './helpers/images.js';
import { makeTempDir, requireTool, run, runOk } from './helpers/tools.js';
import { BIN } from './helpers/cli.js';

/** A private server: its socket in our temp dir, removed with it (-L would leave one in /tmp/tmux-UID). */
let socket: string;
let tmux: string;
let reg: TestRegistry;
let base: string;
let cacheDir: string;
let session = 0;

test.before(async () => {
  tmux = requireTool('tmux');
  socket = join(makeTempDir('progress-tmux'), 'sock');
  requireTool('runc');
  reg = await withRegistry('none');
  base = await busyboxBase(reg);
  cacheDir = makeTempDir('progress-tty-cache');
});

test.after(async () => {
  // The private server and every pane in it.
  if (socket) await run(tmux, ['-S', socket, 'kill-server']);
});

function t(...args: string[]): Promise<string> {
  return runOk(tmux, ['-S', socket, ...args]);
}

interface Pane {
  name: string;
  /** What the pane shows, without colour codes (`-e` keeps them, `-J` joins wrapped lines). */
  capture(opts?: { escapes?: boolean; join?: boolean }): Promise<string>;
  cursorVisible(): Promise<boolean>;
  /** Polls the screen until `pred` holds (a failure guard, not a time assertion). */
  waitFor(pred: (screen: string) => boolean, what: string): Promise<string>;
}

/**
 * A context with a COPY and a RUN that prints 8 lines, then sleeps, then a
 * COPY; a pane of `width` columns running `ocistack build` in it.
 */
async function startBuild(opts: { width: number; env?: Record<string, string>; sleep?: number; stdoutFile?: string }): Promise<Pane> {
  const dir = makeTempDir('progress-tty');
  writeFileSync(join(dir, 'Dockerfile'), `ARG BASE
FROM \${BASE}
COPY a.txt /a.txt
RUN for i in 1 2 3 4 5 6 7 8; do echo out-line-$i; done; sleep ${opts.sleep ?? 3}; echo after-sleep
COPY b.txt /b.txt
`);
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  writeFileSync(join(dir, 'b.txt'), 'b\n');
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `export ${k}='${v}'\n`).join('');
  const script = join(dir, 'run.sh');
  // The pane stays after the build (exec sleep) so its last frame can be read.
  writeFileSync(script, `cd '${dir}'
unset NO_COLOR FORCE_COLOR
# Ctrl-C goes to the whole foreground group: the shell carries on to print the exit code.
trap ':' INT
export PATH='${process.env.PATH}:/usr/sbin:/sbin' HOME='${process.env.HOME}'
${env}'${process.execPath}' '${BIN}' build . --build-arg BASE=${base} --ca-file '${reg.caFile}' --cache-dir '${cacheDir}'${opts.stdoutFile ? ` > '${opts.stdoutFile}'` : ''}
echo "EXIT=$?"
exec sleep 600
`);
  const name = `s${++session}`;
  await t('-f', '/dev/null', 'new-session', '-d', '-s', name, '-x', String(opts.width), '-y', '30', `sh '${script}'`);
  const pane: Pane = {
    name,
    capture: (c = {}) => t('capture-pane', '-p', ...(c.escapes ? ['-e'] : []), ...(c.join ? ['-J'] : []), '-t', name),
    cursorVisible: async () => (await t('display-message', '-p', '-t', name, '#{cursor_flag}')).trim() === '1',
    async waitFor(pred, what) {
      let last = '';
      for (let i = 0; i < 1200; i++) {
        last = await pane.capture();
        if (pred(last)) return last;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the terminal never showed ${what}; it shows:\n${last}`);
    },
  };
  return pane;
}

const lines = (screen: string) => screen.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
const RUN_LINE = /^#\d+ \[stage-0 2\/3\] RUN for i in .* (\d+\.\ds)$/;

test('100 columns: numbered steps, a live timer and the last 6 RUN lines under the running step, then the summary', async () => {
  const pane = await startBuild({ width: 100 });
  const running = await pane.waitFor((s) => lines(s).some((l) => RUN_LINE.test(l)) && s.includes('out-line-8'), 'the running RUN step with its output');
  const view = lines(running);
  const at = view.findIndex((l) => RUN_LINE.test(l));
  assert.equal(view.slice(at + 1, at + 7), ['  out-line-3', '  out-line-4', '  out-line-5', '  out-line-6', '  out-line-7', '  out-line-8'], running);
  assert.not.ok(running.includes('out-line-2'), 'only the last 6 lines');
  assert.ok(view.some((l) => /^#\d+ pull \S+busybox:latest +\d+\.\ds$/.test(l)), `a step without a position is shown by its name\n${running}`);
  assert.ok(view.some((l) => /^#\d+ \[stage-0 1\/3\] COPY a\.txt \/a\.txt +\d+\.\ds$/.test(l)), running);
  assert.is(await pane.cursorVisible(), false, 'the cursor is hidden while the live area is drawn');
  // The timer is redrawn without any event: the same step shows another time later.
  const first = RUN_LINE.exec(view[at]!)![1];
  await pane.waitFor((s) => lines(s).some((l) => RUN_LINE.test(l) && RUN_LINE.exec(l)![1] !== first), 'the timer moving');

  const end = await pane.waitFor((s) => s.includes('EXIT='), 'the end of the build');
  assert.match(end, /^EXIT=0$/m, end);
  const done = lines(end);
  assert.ok(done.some((l) => RUN_LINE.test(l)), `the RUN step with its duration\n${end}`);
  assert.ok(done.some((l) => /^#\d+ \[stage-0 3\/3\] COPY b\.txt \/b\.txt +\d+\.\ds$/.test(l)), end);
  assert.not.ok(end.includes('out-line-8'), 'a finished step\'s output is not left on screen');
  const digest = done.find((l) => /^sha256:[0-9a-f]{64}$/.test(l));
  assert.ok(digest, `the digest on stdout\n${end}`);
  const summary = done.find((l) => l.startsWith('built in '));
  assert.match(summary ?? '', /^built in \d+\.\ds, 3 steps \(0 cached\) sha256:[0-9a-f]{12}/, end);
  assert.ok(digest!.startsWith((summary ?? '').split(' ').pop()!), 'the summary names the digest');
  assert.ok(done.indexOf(summary!) < done.indexOf(digest!) , 'the summary is the last progress line');
  assert.is(await pane.cursorVisible(), true, 'the cursor is back');
  assert.match(await pane.capture({ escapes: true }), /\x1b\[[0-9;]*m/, 'colours on a terminal without NO_COLOR');
});

test('40 columns with NO_COLOR: no line wraps, lines are cut with …, no escape code at all', async () => {
  const out = join(makeTempDir('progress-tty-out'), 'digest');
  const pane = await startBuild({ width: 40, env: { NO_COLOR: '1' }, stdoutFile: out });
  const check = async (when: string) => {
    const plain = await pane.capture();
    assert.is(await pane.capture({ join: true }), plain, `${when}: a wrapped line would be joined by -J\n${plain}`);
    for (const l of plain.split('\n')) assert.ok([...l].length <= 40, `${when}: ${l}`);
    const colours = await pane.capture({ escapes: true });
    assert.not.ok(colours.includes('\x1b'), `${when}: NO_COLOR: ${JSON.stringify(colours)}`);
    return plain;
  };
  await pane.waitFor((s) => s.includes('out-line-8'), 'the running RUN step');
  const running = await check('while running');
  assert.ok(lines(running).some((l) => /^#\d+ \[stage-0 2\/3\] RUN for i i.*… +\d+\.\ds$/.test(l)), running);
  await pane.waitFor((s) => s.includes('EXIT='), 'the end of the build');
  const end = await check('at the end');
  assert.match(end, /^EXIT=0$/m);
  assert.ok(lines(end).some((l) => /^built in \d+\.\ds, 3 steps \(0 cached\)/.test(l)), end);
  assert.match(readFileSync(out, 'utf8'), /^sha256:[0-9a-f]{64}\n$/, 'stdout has the digest only');
});

test('Ctrl-C during a RUN: the running step is printed as CANCELED, then the interrupt message; the cursor is back', async () => {
  const pane = await startBuild({ width: 100, sleep: 60 });
  await pane.waitFor((s) => s.includes('out-line-8'), 'the running RUN step');
  await t('send-keys', '-t', pane.name, 'C-c');
  const end = await pane.waitFor((s) => s.includes('EXIT='), 'the end of the build');
  assert.match(end, /^EXIT=130$/m, end);
  const view = lines(end);
  const cancel = view.findIndex((l) => /^#\d+ \[stage-0 2\/3\] RUN for i in .* CANCELED \d+\.\ds$/.test(l));
  const msg = view.findIndex((l) => l.startsWith('interrupted: stopping'));
  assert.ok(cancel >= 0 && msg > cancel, end);
  assert.not.ok(end.includes('out-line-8'), `no live area left behind\n${end}`);
  assert.is(view.filter((l) => /RUN for i in/.test(l)).length, 1, `the step once, no stale frame\n${end}`);
  assert.is(await pane.cursorVisible(), true);
});

test.run();
