/**
 * openContext: the .dockerignore rules (Docker's, see ignore.ts), which
 * ignore file wins, walking with exceptions, symlinks kept inside the
 * context, and special files skipped with a warning.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { openContext, IgnoreMatcher, parseDockerignore } from '../lib/context/index.js';
import { OcistackError } from '../lib/errors.js';
import type { ProgressEvent } from '../lib/progress/events.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ocistack-context-test-'));

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'ctx-'));
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (rel.endsWith('/')) fs.mkdirSync(p, { recursive: true });
    else fs.writeFileSync(p, content);
  }
  return dir;
}

async function walked(dir: string, dockerfile?: string): Promise<string[]> {
  const ctx = await openContext({ dir, dockerfile });
  const out: string[] = [];
  for await (const e of ctx.walk('')) out.push(e.rel);
  return out;
}

test('parseDockerignore: comments, blanks, whitespace, leading slash, cleaning, exceptions', () => {
  const lines = parseDockerignore('\uFEFF# comment\n\n  *.log  \n/abs/path\n./a/../b/\n! keep.log\n  # not a comment\r\n');
  assert.equal(lines, ['*.log', 'abs/path', 'b', '!keep.log', '# not a comment']);
});

test('IgnoreMatcher: last match wins, parents exclude children, exceptions re-include', () => {
  const m = new IgnoreMatcher(['docs', '!docs/README.md', '*.tmp', 'build/**', '!build/keep']);
  assert.ok(m.excludes('docs'));
  assert.ok(m.excludes('docs/other.md'));
  assert.not.ok(m.excludes('docs/README.md'));
  assert.ok(m.excludes('x.tmp'));
  assert.not.ok(m.excludes('dir/x.tmp'), '* does not cross directories');
  assert.ok(m.excludes('build/a/b'));
  assert.not.ok(m.excludes('build/keep'));
  assert.not.ok(m.excludes('build'), 'build/** does not match build itself');
});

test('IgnoreMatcher: an invalid exception is an OcistackError naming the file', () => {
  try {
    new IgnoreMatcher(['!'], 'Dockerfile.dockerignore');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.match((e as Error).message, /Dockerfile\.dockerignore/);
  }
});

test('openContext: missing or non-directory context is a clear error', async () => {
  for (const dir of [path.join(tmpRoot, 'nope'), __filename_()]) {
    try {
      await openContext({ dir });
      assert.unreachable();
    } catch (e) {
      assert.instance(e, OcistackError);
      assert.is((e as OcistackError).code, 'CONTEXT_NOT_FOUND');
      assert.ok((e as OcistackError).hint);
    }
  }
});

function __filename_(): string {
  const f = path.join(tmpRoot, 'a-file');
  fs.writeFileSync(f, '');
  return f;
}

test('walk: .dockerignore excludes, an exception inside an excluded dir is still found', async () => {
  const dir = tree({
    '.dockerignore': 'node_modules\n*.log\ndocs\n!docs/README.md\n',
    'app.js': '',
    'err.log': '',
    'node_modules/x/index.js': '',
    'docs/README.md': '',
    'docs/other.md': '',
    'sub/deep.log': '',
  });
  assert.equal(await walked(dir), ['.dockerignore', 'app.js', 'docs/README.md', 'sub', 'sub/deep.log']);
});

test('openContext: <Dockerfile>.dockerignore wins over .dockerignore', async () => {
  const dir = tree({ '.dockerignore': 'a\n', 'build/app.Dockerfile.dockerignore': 'b\n', 'build/app.Dockerfile': 'FROM scratch\n', a: '', b: '' });
  const ctx = await openContext({ dir, dockerfile: path.join(dir, 'build/app.Dockerfile') });
  assert.not.ok(ctx.excluded('a'));
  assert.ok(ctx.excluded('b'));
  assert.is(ctx.ignoreFile, path.join(dir, 'build/app.Dockerfile.dockerignore'));
  const plain = await openContext({ dir });
  assert.ok(plain.excluded('a'));
});

test('resolve: symlinks resolve inside the context, never out of it', async () => {
  const dir = tree({ 'etc/passwd': 'ctx', 'real/file': 'x' });
  fs.symlinkSync('/etc/passwd', path.join(dir, 'abs'));
  fs.symlinkSync('../../../../real', path.join(dir, 'up'));
  const ctx = await openContext({ dir });
  assert.is(await ctx.resolve('abs', true), 'etc/passwd');
  assert.is(await ctx.resolve('up/file', true), 'real/file');
  assert.is(await ctx.resolve('up', false), 'up');
  const st = await ctx.lstat('abs');
  assert.is(st!.type, 'symlink');
});

test('walk: sockets are skipped with a warning', async () => {
  const dir = tree({ 'a.txt': '' });
  const sock = path.join(dir, 's.sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const events: ProgressEvent[] = [];
    const ctx = await openContext({ dir, onProgress: (e) => events.push(e) });
    const out: string[] = [];
    for await (const e of ctx.walk('')) out.push(e.rel);
    assert.equal(out, ['a.txt']);
    assert.ok(events.some((e) => e.type === 'warning' && e.message.includes('s.sock')));
  } finally {
    server.close();
  }
});

test.after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
test.run();
