/**
 * The conformance runner (dist/test/conformance/run.js) against a made-up
 * vector folder: kinds that are missing are "not present", the others run,
 * and the last line and exit code report failures.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformanceDir } from './conformance/dir.js';

const runner = fileURLToPath(new URL('./conformance/run.js', import.meta.url));

function runIn(dir: string, env: NodeJS.ProcessEnv = { CI: '' }): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [runner], { env: { ...process.env, ...env, OCISTACK_CONFORMANCE_DIR: dir }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('a folder with only some kinds runs those and reports the rest as not present', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocistack-conf-'));
  try {
    mkdirSync(join(dir, 'buildkit-shell'));
    writeFileSync(join(dir, 'buildkit-shell', 'wordsTest'), 'ENV x=a b\n# comment\none $x | one,a,b\n"q $x" | q a b\n');
    mkdirSync(join(dir, 'buildkit-parser', 'cases', 'mine'), { recursive: true });
    writeFileSync(join(dir, 'buildkit-parser', 'cases', 'mine', 'Dockerfile'), 'FROM x\nRUN a \\\n  b\n');
    writeFileSync(join(dir, 'buildkit-parser', 'cases', 'mine', 'result'), '(from "x")\n(run "a   b")\n');
    const { code, out } = runIn(dir);
    assert.is(code, 0, out);
    assert.match(out, /parser-cases: 1\/1 passed/);
    assert.match(out, /parser-negative: not present/);
    assert.match(out, /shell-envvar: not present/);
    assert.match(out, /shell-words: 2\/2 passed/);
    assert.ok(out.trimEnd().endsWith('3 passed, 0 failed'), out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('under CI=true a missing kind folder is a failure, not "not present"', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocistack-conf-'));
  try {
    mkdirSync(join(dir, 'buildkit-shell'));
    writeFileSync(join(dir, 'buildkit-shell', 'wordsTest'), 'one | one\n');
    const { code, out } = runIn(dir, { CI: 'true' });
    assert.is(code, 1, out);
    assert.match(out, /shell-words: 1\/1 passed/);
    assert.match(out, /FAILED parser-negative: .*buildkit-parser\/negative does not exist \(CI=true/);
    assert.match(out, /FAILED shell-envvar: /);
    assert.ok(out.trimEnd().endsWith('1 passed, 4 failed'), out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a negative vector must fail at its recorded line; an unknown vector fails', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocistack-conf-'));
  try {
    const neg = join(dir, 'buildkit-parser', 'negative');
    // Same name as the real vector (expected line 3), but two more blank lines: the error is at line 5.
    mkdirSync(join(neg, 'only_comments'), { recursive: true });
    writeFileSync(join(neg, 'only_comments', 'Dockerfile'), '# Hello\n\n\n# just comments\n\n');
    mkdirSync(join(neg, 'made_up'));
    writeFileSync(join(neg, 'made_up', 'Dockerfile'), '');
    const { code, out } = runIn(dir);
    assert.is(code, 1, out);
    assert.match(out, /FAILED parser-negative only_comments: only_comments: error at only_comments\/Dockerfile:5, expected only_comments\/Dockerfile:3/);
    assert.match(out, /FAILED parser-negative made_up: made_up: no expected error line recorded/);
    assert.ok(out.trimEnd().endsWith('0 passed, 2 failed'), out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a wrong expectation fails the run with exit 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocistack-conf-'));
  try {
    mkdirSync(join(dir, 'buildkit-shell'));
    writeFileSync(join(dir, 'buildkit-shell', 'envVarTest'), 'A|$PWD|/home\nA|${PWD:-x}|wrong\nW|win only|skipped\n');
    const { code, out } = runIn(dir);
    assert.is(code, 1);
    assert.match(out, /shell-envvar: 1\/2 passed/);
    assert.match(out, /FAILED shell-envvar line 2/);
    assert.ok(out.trimEnd().endsWith('1 passed, 1 failed'), out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing conformance directory is an error', () => {
  const { code, out } = runIn(join(tmpdir(), 'ocistack-no-such-dir-' + process.pid));
  assert.is(code, 1);
  assert.match(out, /does not exist/);
});

test('default directory is ../shared/conformance beside the repository', () => {
  assert.ok(conformanceDir({}).endsWith(join('shared', 'conformance')));
  assert.is(conformanceDir({ OCISTACK_CONFORMANCE_DIR: '/x/y' }), '/x/y');
});

test.run();
