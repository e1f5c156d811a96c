/**
 * test/helpers/suite.ts: a throwing uvu hook fails loudly. Each case writes a
 * small uvu file, runs it in a child node process and reads what a user (and
 * scripts/test.sh) would see: the summary, the failure message, the exit code.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { makeTempDir, run } from './helpers/tools.js';

const SUITE_URL = pathToFileURL(join(fileURLToPath(new URL('.', import.meta.url)), 'helpers', 'suite.js')).href;

interface Child {
  code: number;
  out: string;
  total: number;
  passed: number;
}

/** Run `body` as an ES module whose `test` comes from `from` ('wrapper' or plain 'uvu'). */
async function runChild(body: string, from: 'wrapper' | 'uvu' = 'wrapper'): Promise<Child> {
  const dir = makeTempDir('suite');
  const file = join(dir, 'child.test.mjs');
  // The plain-uvu child imports uvu through the repository's node_modules.
  const uvuUrl = pathToFileURL(join(fileURLToPath(new URL('../..', import.meta.url)), 'node_modules', 'uvu', 'dist', 'index.mjs')).href;
  const head = from === 'wrapper' ? `import { test, suite } from '${SUITE_URL}';` : `import { test, suite } from '${uvuUrl}';`;
  writeFileSync(file, `${head}\n${body}\n`);
  const r = await run(process.execPath, [file], { env: { ...process.env, NODE_DISABLE_COLORS: '1', FORCE_COLOR: '0' }, timeoutMs: 30_000 });
  const out = (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*m/g, '');
  const num = (label: string) => Number(out.match(new RegExp(`^\\s*${label}:\\s*(\\d+)`, 'm'))?.[1] ?? NaN);
  return { code: r.code, out, total: num('Total'), passed: num('Passed') };
}

test('plain uvu 0.5 swallows a throwing before hook (why the wrapper exists)', async () => {
  // If this starts failing, uvu reports hook errors itself and the wrapper can go.
  const r = await runChild(`test.before(() => { throw new Error('db-down'); });\ntest('a', () => {});\ntest.run();`, 'uvu');
  assert.is(r.code, 0, r.out);
  assert.not.match(r.out, /db-down/);
});

test('a throwing before hook fails every test with its message, exit 1', async () => {
  const r = await runChild(
    `let cleaned = false;
test.before(() => { throw new Error('registry would not start'); });
test.after(() => { console.log('after ran'); });
test('a', () => {});
test('b', () => {});
test.run();`,
  );
  assert.is(r.code, 1, r.out);
  assert.is(r.total, 3, r.out);
  assert.is(r.passed, 1, 'only the "after hooks" test passes');
  assert.match(r.out, /before hook failed: registry would not start/);
  assert.match(r.out, /after ran/, 'after hooks still run (cleanup)');
});

test('a throwing after hook is a failing test named "after hooks" with its message', async () => {
  const r = await runChild(`test.after(async () => { throw new Error('could not stop nginx'); });\ntest('a', () => {});\ntest.run();`);
  assert.is(r.code, 1, r.out);
  assert.is(r.total, 2, r.out);
  assert.is(r.passed, 1, r.out);
  assert.match(r.out, /"after hooks"/);
  assert.match(r.out, /after hook failed: could not stop nginx/);
});

test('throwing before.each and after.each hooks fail the test they ran for', async () => {
  const r = await runChild(
    `const s = suite('each');
let n = 0;
s.before.each(() => { n++; if (n === 2) throw new Error('second setup broke'); });
s.after.each(() => { if (n === 3) throw new Error('third teardown broke'); });
s('one', () => {});
s('two', () => {});
s('three', () => {});
s('four', () => { throw new Error('own failure'); });
s.run();`,
  );
  assert.is(r.code, 1, r.out);
  assert.is(r.total, 4, r.out);
  assert.is(r.passed, 1, r.out);
  assert.match(r.out, /before\.each hook failed: second setup broke/);
  assert.match(r.out, /after\.each hook failed: third teardown broke/);
  assert.match(r.out, /own failure/);
});

test('hooks that pass change nothing: context flows, after hooks run once at the end', async () => {
  const r = await runChild(
    `const s = suite('ctx', { log: [] });
s.before((c) => { c.log.push('before'); });
s.before.each((c) => { c.log.push('each:' + c.__test__); });
s.after.each((c) => { c.log.push('done:' + c.__test__); });
s.after((c) => { c.log.push('after'); console.log('LOG ' + c.log.join(',')); });
s('x', (c) => { c.log.push('x'); });
s('y', (c) => { c.log.push('y'); });
s.run();`,
  );
  assert.is(r.code, 0, r.out);
  assert.is(r.total, 3, r.out);
  assert.is(r.passed, 3, r.out);
  assert.match(r.out, /LOG before,each:x,x,done:x,each:y,y,done:y,after/);
});

test('every test file takes test/suite from helpers/suite.js, not from uvu', () => {
  const srcDir = join(fileURLToPath(new URL('../..', import.meta.url)), 'test');
  const files = readdirSync(srcDir).filter((n) => n.endsWith('.test.ts'));
  assert.ok(files.length > 10, `found only ${files.length} test files in ${srcDir}`);
  const direct = files.filter((n) => /import\s*\{[^}]*\b(test|suite)\b[^}]*\}\s*from\s*'uvu'/.test(readFileSync(join(srcDir, n), 'utf8')));
  assert.equal(direct, [], `import { test } from './helpers/suite.js' instead of 'uvu' in: ${direct.join(', ')}`);
});

test.run();
