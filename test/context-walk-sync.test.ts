/**
 * BuildContext.walkSync (lib/context/context.ts), the synchronous stat walk
 * of a local context: the same entries, order, warnings and errors as the
 * promise walk over a source without synchronous calls, and the lstat
 * identity it carries (what the stat cache trusts without a second lstat).
 * Also the byte-order comparison's fast path (source.ts compareCodeUnits).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BuildContext, openContext } from '../lib/context/context.js';
import { compareCodeUnits, type ContextSource } from '../lib/context/source.js';
import { PassThroughSource } from './helpers/pass-through-source.js';
import type { ProgressEvent } from '../lib/progress/events.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ocistack-walk-sync-test-'));

/** A source with only the promise calls: BuildContext.walk takes its batched lstat path. */
class AsyncOnly extends PassThroughSource {}

interface Walked {
  entries: string[];
  warnings: string[];
}

async function both(dir: string): Promise<{ sync: Walked; promise: Walked; ctx: BuildContext }> {
  const syncWarnings: string[] = [];
  const ctx = await openContext({ dir, onProgress: (e: ProgressEvent) => e.type === 'warning' && syncWarnings.push(e.message) });
  assert.ok(ctx.syncSource, 'a local directory has the synchronous calls');
  const line = (e: { rel: string; stat: { type: string; mode: number; size: number; mtime: number; inode: string; nlink: number } }) =>
    `${e.rel} ${e.stat.type} ${e.stat.mode.toString(8)} ${e.stat.size} ${e.stat.mtime} ${e.stat.inode} ${e.stat.nlink}`;
  const sync: Walked = { entries: [...ctx.walkSync('')].map(line), warnings: syncWarnings };
  const promiseWarnings: string[] = [];
  const slow = new BuildContext({ dir: ctx.dir, source: new AsyncOnly(ctx.source), ignore: ctx.ignore, onProgress: (e) => e.type === 'warning' && promiseWarnings.push(e.message) });
  assert.not.ok(slow.syncSource);
  const entries: string[] = [];
  for await (const e of slow.walk('')) entries.push(line(e));
  return { sync, promise: { entries, warnings: promiseWarnings }, ctx };
}

test('walkSync: same entries, order and warnings as the promise walk (.dockerignore exceptions, symlinks, sockets, FIFOs, non-ASCII names)', async () => {
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'ctx-'));
  const files: Record<string, string> = {
    '.dockerignore': 'node_modules\n*.log\ndocs\n!docs/README.md\n!node_modules/keep/**\n',
    'app.js': 'x',
    'err.log': 'log',
    'node_modules/x/index.js': '',
    'node_modules/keep/a/b.js': 'keep',
    'docs/README.md': 'r',
    'docs/other.md': '',
    'sub/deep.log': '',
    'sub/z.txt': 'zz',
    // U+FF5E sorts before U+1F600 in UTF-8 bytes but after it in UTF-16 code units.
    'names/\uff5e.txt': '',
    'names/\u{1f600}.txt': '',
    'names/B': '',
    'names/a': '',
    'names/\u00e9': '',
  };
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  fs.symlinkSync('app.js', path.join(dir, 'link'));
  fs.symlinkSync('/nowhere', path.join(dir, 'sub/dangling'));
  fs.linkSync(path.join(dir, 'app.js'), path.join(dir, 'sub/hard'));
  assert.is(spawnSync('mkfifo', [path.join(dir, 'sub/pipe')]).status, 0, 'mkfifo');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(path.join(dir, 's.sock'), r));
  try {
    const { sync, promise } = await both(dir);
    assert.equal(sync.entries, promise.entries);
    assert.equal(sync.warnings, promise.warnings);
    const rels = sync.entries.map((l) => l.split(' ')[0]);
    assert.equal(rels, [
      '.dockerignore', 'app.js', 'docs/README.md', 'link', 'names', 'names/B', 'names/a', 'names/\u00e9', 'names/\uff5e.txt', 'names/\u{1f600}.txt',
      'node_modules/keep/a', 'node_modules/keep/a/b.js', 'sub', 'sub/dangling', 'sub/deep.log', 'sub/hard', 'sub/z.txt',
    ]);
    assert.is(sync.warnings.length, 2);
    assert.ok(sync.warnings[0]!.includes('"s.sock"') && sync.warnings[0]!.includes('socket'));
    assert.ok(sync.warnings[1]!.includes('"sub/pipe"') && sync.warnings[1]!.includes('fifo'));
  } finally {
    server.close();
  }
});

test('walkSync: an unreadable directory fails with CONTEXT_READ naming it, as the promise walk does', async () => {
  // Root reads everything, so the failure comes through the ContextSource seam.
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'ctx-'));
  fs.mkdirSync(path.join(dir, 'a'));
  fs.writeFileSync(path.join(dir, 'a/f'), '');
  const ctx = await openContext({ dir });
  const source = ctx.source as ContextSource;
  const failing: ContextSource = Object.assign(Object.create(Object.getPrototypeOf(source)), source, {
    readdirSync(rel: string): string[] {
      if (rel === 'a') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      return source.readdirSync!(rel);
    },
  });
  const broken = new BuildContext({ dir: ctx.dir, source: failing, ignore: ctx.ignore });
  let err: unknown;
  try {
    for (const _ of broken.walkSync('')) void _;
  } catch (e) {
    err = e;
  }
  assert.is((err as { code?: string })?.code, 'CONTEXT_READ');
  assert.match((err as Error).message, /"a" in the build context: permission denied/);
});

test('walkSync: each file carries its lstat identity, its clock read taken before the lstat', async () => {
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'ctx-'));
  fs.writeFileSync(path.join(dir, 'f'), 'hello');
  const before = Date.now();
  const ctx = await openContext({ dir });
  const [e] = [...ctx.walkSync('')];
  const after = Date.now();
  const st = fs.lstatSync(path.join(dir, 'f'), { bigint: true });
  const id = e!.stat.identity!;
  assert.is(id.key, `5:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}:${Number(st.mode)}`);
  assert.ok(id.statMs >= before && id.statMs <= after);
  fs.mkdirSync(path.join(dir, 'd'));
  fs.symlinkSync('f', path.join(dir, 'l'));
  const others = [...ctx.walkSync('')].filter((x) => x.rel !== 'f');
  assert.equal(others.map((x) => [x.rel, x.stat.identity]), [['d', undefined], ['l', undefined]], 'only regular files carry one');
});

test('compareCodeUnits: UTF-8 byte order, with and without surrogate pairs', () => {
  const alphabet = ['a', 'B', '_', '.', '-', '0', '\u00e9', '\u0800', '\ue000', '\uff5e', '\u{1f600}', '\u{10000}', '\u{10ffff}'];
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const words = Array.from({ length: 400 }, () => Array.from({ length: 1 + rnd(4) }, () => alphabet[rnd(alphabet.length)]).join(''));
  for (let i = 0; i < words.length; i++) {
    for (let j = 0; j < 40; j++) {
      const a = words[i]!;
      const b = words[rnd(words.length)]!;
      const want = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.is(Math.sign(compareCodeUnits(a, b)), want, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  }
});

test.after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
test.run();
