/**
 * copyLayer on a real context directory and a real base layer: what lands in
 * the layer (read back with GNU tar) for files, directories, wildcards,
 * WORKDIR-relative and symlinked destinations, owners, modes, hard links,
 * ADD archives and URLs, and the errors for bad input.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { copyLayer, type CopyInstruction } from '../lib/engine/copy.js';
import { openContext, FsContextSource, BuildContext, IgnoreMatcher } from '../lib/context/index.js';
import { OcistackError } from '../lib/errors.js';
import { BlobStore } from '../lib/image/store.js';
import { openImageFs, type ImageFs } from '../lib/layer/index.js';
import { baseImage, copyIns, layerFile, listLayer, tempDir } from './copy-util.js';
import { requireTool } from './helpers/tools.js';

const root = tempDir('copy-test');
const store = new BlobStore(path.join(root, 'store'));
const ctxDir = path.join(root, 'ctx');
const loc = { file: 'Dockerfile', line: 7 };
let base: ImageFs;

function write(rel: string, content: string, mode = 0o644): void {
  const p = path.join(ctxDir, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  fs.chmodSync(p, mode);
  fs.utimesSync(p, 1650000000, 1650000000);
}

test.before(async () => {
  write('a.txt', 'A\n');
  write('b.txt', 'B\n');
  write('run.sh', '#!/bin/sh\n', 0o755);
  write('src/main.c', 'int main;\n');
  write('src/lib/util.c', 'util\n', 0o600);
  write('src/.hidden', 'h');
  write('secret.key', 'nope');
  write('data.bin', 'x'.repeat(100000));
  fs.writeFileSync(path.join(ctxDir, '.dockerignore'), 'secret.key\n');
  fs.symlinkSync('a.txt', path.join(ctxDir, 'link-to-a'));
  fs.symlinkSync('../a.txt', path.join(ctxDir, 'src/up-link'));
  fs.linkSync(path.join(ctxDir, 'src/main.c'), path.join(ctxDir, 'src/main-hard.c'));
  fs.chmodSync(path.join(ctxDir, 'src'), 0o750);
  base = (await baseImage(store)).fs;
});

async function run(ins: CopyInstruction, extra: { workdir?: string; target?: ImageFs; from?: ImageFs; sourceDateEpoch?: number } = {}) {
  const context = await openContext({ dir: ctxDir });
  const r = await copyLayer({ instruction: ins, location: loc, context, target: extra.target ?? base, from: extra.from, workdir: extra.workdir ?? '/', store, sourceDateEpoch: extra.sourceDateEpoch });
  return { r, list: listLayer(store, r.digest) };
}

function countBlobs(): number {
  const dir = path.join(store.root, 'blobs', 'sha256');
  return fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
}

async function fails(ins: CopyInstruction, re: RegExp, extra: { workdir?: string; context?: BuildContext } = {}): Promise<OcistackError> {
  const context = extra.context ?? (await openContext({ dir: ctxDir }));
  const blobsBefore = countBlobs();
  try {
    await copyLayer({ instruction: ins, location: loc, context, target: base, workdir: extra.workdir ?? '/', store });
  } catch (e) {
    assert.instance(e, OcistackError);
    const err = e as OcistackError;
    assert.match(err.message, re);
    assert.equal(err.location, loc, 'error names the Dockerfile line');
    assert.ok(err.hint, 'error has a hint');
    assert.is(err.exitCode, 1);
    assert.is(countBlobs(), blobsBefore, 'nothing written');
    assert.equal(fs.readdirSync(path.join(store.root, 'tmp')), [], 'no temp files left');
    return err;
  }
  assert.unreachable('copyLayer should have failed');
  throw new Error();
}

test('COPY file to a WORKDIR-relative path, parents created, mode and mtime kept', async () => {
  const { r, list } = await run(copyIns(['a.txt'], 'sub/x.txt'), { workdir: '/work' });
  assert.equal(list, ['d work/ rwxr-xr-x 0:0', 'd work/sub/ rwxr-xr-x 0:0', '- work/sub/x.txt rw-r--r-- 0:0 2']);
  assert.is(layerFile(store, r.digest, 'work/sub/x.txt'), 'A\n');
  const full = execFileSync('tar', ['--full-time', '-tvzf', store.path(r.digest), 'work/sub/x.txt'], { encoding: 'utf8', env: { TZ: 'UTC' } });
  assert.match(full, /2022-04-15 05:20:00/);
});

test('COPY several files into a directory destination; an existing parent keeps its metadata', async () => {
  const { list } = await run(copyIns(['a.txt', 'run.sh'], '/opt/'));
  assert.equal(list, ['d opt/ rwx------ 7:7', '- opt/a.txt rw-r--r-- 0:0 2', '- opt/run.sh rwxr-xr-x 0:0 10']);
});

test('COPY a directory copies its contents (symlinks as symlinks, hard links as hard links)', async () => {
  const { list } = await run(copyIns(['src'], '/app'));
  assert.equal(list, [
    'd app/ rwxr-xr-x 0:0',
    '- app/.hidden rw-r--r-- 0:0 1',
    'd app/lib/ rwxr-xr-x 0:0',
    '- app/lib/util.c rw------- 0:0 5',
    '- app/main-hard.c rw-r--r-- 0:0 10',
    'h app/main.c rw-r--r-- 0:0 => app/main-hard.c',
    'l app/up-link rwxrwxrwx 0:0 -> ../a.txt',
  ]);
});

test('COPY . honours .dockerignore', async () => {
  const { list } = await run(copyIns(['.'], '/ctx/'));
  assert.not.ok(list.some((l) => l.includes('secret.key')));
  assert.ok(list.includes('- ctx/a.txt rw-r--r-- 0:0 2'));
  assert.ok(list.includes('- ctx/.dockerignore rw-r--r-- 0:0 11'));
});

test('COPY with wildcards', async () => {
  const { list } = await run(copyIns(['*.txt', 'src/*.c'], '/w/'));
  assert.equal(list, ['d w/ rwxr-xr-x 0:0', '- w/a.txt rw-r--r-- 0:0 2', '- w/b.txt rw-r--r-- 0:0 2', '- w/main-hard.c rw-r--r-- 0:0 10', 'h w/main.c rw-r--r-- 0:0 => w/main-hard.c']);
  const one = await run(copyIns(['a.t?t'], '/single'));
  assert.equal(one.list, ['- single rw-r--r-- 0:0 2']);
});

test('COPY a file onto an existing directory without trailing slash puts it inside', async () => {
  const { list } = await run(copyIns(['a.txt'], '/opt'));
  assert.equal(list, ['d opt/ rwx------ 7:7', '- opt/a.txt rw-r--r-- 0:0 2']);
});

test('COPY to a destination below a symlinked directory writes through the link', async () => {
  const { list } = await run(copyIns(['run.sh'], '/usr/local/bin/'));
  assert.equal(list, ['d bin/ rwxr-xr-x 0:0', '- bin/run.sh rwxr-xr-x 0:0 10']);
  const rel = await run(copyIns(['a.txt'], 'local/bin/a'), { workdir: '/usr' });
  assert.equal(rel.list, ['d bin/ rwxr-xr-x 0:0', '- bin/a rw-r--r-- 0:0 2']);
});

test('COPY a top-level symlink source copies what it points to', async () => {
  const { list } = await run(copyIns(['link-to-a'], '/l/'));
  assert.equal(list, ['d l/ rwxr-xr-x 0:0', '- l/link-to-a rw-r--r-- 0:0 2']);
});

test('COPY --chown by name (from the stage /etc/passwd and /etc/group) and number; --chmod octal and symbolic', async () => {
  const named = await run(copyIns(['a.txt'], '/home/app/new/', { chown: 'app:staff' }));
  assert.equal(named.list, ['d home/ rwxr-xr-x 0:0', 'd home/app/ rwxr-xr-x 1000:1000', 'd home/app/new/ rwxr-xr-x 1000:50', '- home/app/new/a.txt rw-r--r-- 1000:50 2']);
  const primary = await run(copyIns(['a.txt'], '/x', { chown: 'web' }));
  assert.equal(primary.list, ['- x rw-r--r-- 33:44 2']);
  const numeric = await run(copyIns(['a.txt'], '/x', { chown: '12:34', chmod: '4711' }));
  assert.equal(numeric.list, ['- x rws--x--x 12:34 2']);
  const sym = await run(copyIns(['src'], '/s', { chmod: 'u+x,go-rwx' }));
  assert.ok(sym.list.includes('- s/main-hard.c rwx------ 0:0 10'), sym.list.join('\n'));
  assert.ok(sym.list.includes('d s/lib/ rwx------ 0:0'), sym.list.join('\n'));
});

test('COPY --exclude and --parents', async () => {
  const ex = await run(copyIns(['src'], '/e/', { exclude: ['*.c', 'lib'] }));
  assert.equal(ex.list, ['d e/ rwxr-xr-x 0:0', '- e/.hidden rw-r--r-- 0:0 1', 'l e/up-link rwxrwxrwx 0:0 -> ../a.txt']);
  const par = await run(copyIns(['src/lib/util.c', 'a.txt'], '/p/', { parents: true }));
  assert.equal(par.list, ['d p/ rwxr-xr-x 0:0', '- p/a.txt rw-r--r-- 0:0 2', 'd p/src/ rwxr-xr-x 0:0', 'd p/src/lib/ rwxr-xr-x 0:0', '- p/src/lib/util.c rw------- 0:0 5']);
  const pivot = await run(copyIns(['src/./lib/util.c'], '/q/', { parents: true }));
  assert.equal(pivot.list, ['d q/ rwxr-xr-x 0:0', 'd q/lib/ rwxr-xr-x 0:0', '- q/lib/util.c rw------- 0:0 5']);
});

test('COPY --link does not follow the base image symlinks', async () => {
  const { list } = await run(copyIns(['run.sh'], '/usr/local/bin/', { link: true }));
  assert.equal(list, ['d usr/ rwxr-xr-x 0:0', 'd usr/local/ rwxr-xr-x 0:0', 'd usr/local/bin/ rwxr-xr-x 0:0', '- usr/local/bin/run.sh rwxr-xr-x 0:0 10']);
});

test('COPY --from another image keeps owners and reads the bytes from its layers', async () => {
  const { list, r } = await run(copyIns(['/etc/passwd', '/home'], '/from/', { from: 'base' }), { from: base });
  assert.equal(list, ['d from/ rwxr-xr-x 0:0', 'd from/app/ rwxr-xr-x 1000:1000', '- from/passwd rw-r--r-- 0:0 101']);
  assert.match(layerFile(store, r.digest, 'from/passwd'), /^root:x:0:0/);
});

test('COPY heredoc', async () => {
  // As the front end hands it over: heredoc words moved out of `sources`.
  const ins = copyIns([], '/h.txt');
  ins.heredocs = [{ name: 'EOF', content: 'hi\n', expand: false, chomp: false }];
  const { r, list } = await run(ins, { sourceDateEpoch: 100 });
  assert.equal(list, ['- h.txt rw-r--r-- 0:0 3']);
  assert.is(layerFile(store, r.digest, 'h.txt'), 'hi\n');
  const two = copyIns(['a.txt'], '/hd/');
  two.heredocs = [{ name: 'one', content: '1\n', expand: false, chomp: false }];
  const multi = await run(two);
  assert.equal(multi.list, ['d hd/ rwxr-xr-x 0:0', '- hd/a.txt rw-r--r-- 0:0 2', '- hd/one rw-r--r-- 0:0 2']);
  await fails(Object.assign(copyIns([], '/nodir'), { heredocs: [{ name: 'x', content: '', expand: false, chomp: false }, { name: 'y', content: '', expand: false, chomp: false }] }), /must be a directory and end with a \//);
});

test('same COPY twice gives the same digest (SOURCE_DATE_EPOCH set)', async () => {
  const a = await run(copyIns(['src', 'a.txt'], '/r/'), { sourceDateEpoch: 1000 });
  const b = await run(copyIns(['src', 'a.txt'], '/r/'), { sourceDateEpoch: 1000 });
  assert.is(a.r.digest, b.r.digest);
});

test('ADD unpacks local tar, tar.gz, tar.bz2 and tar.xz archives; other files are copied', async () => {
  const src = tempDir('archive-src');
  fs.mkdirSync(path.join(src, 'pkg/bin'), { recursive: true });
  fs.writeFileSync(path.join(src, 'pkg/bin/tool'), 'tool');
  fs.chmodSync(path.join(src, 'pkg/bin/tool'), 0o755);
  fs.symlinkSync('bin/tool', path.join(src, 'pkg/t'));
  fs.linkSync(path.join(src, 'pkg/bin/tool'), path.join(src, 'pkg/hard'));
  for (const [name, flag] of [['p.tar', ''], ['p.tar.gz', '-z'], ['p.tar.bz2', '-j'], ['p.tar.xz', '-J'], ['p.tar.zst', '--zstd']] as const) {
    execFileSync('tar', ['-c', ...(flag ? [flag] : []), '-f', path.join(ctxDir, name), '--owner=5', '--group=6', '--numeric-owner', '-C', src, 'pkg']);
    const { list } = await run(copyIns([name], '/ext', { kind: 'add' }));
    assert.equal(list, ['d ext/ rwxr-xr-x 0:0', 'd ext/pkg/ rwxr-xr-x 5:6', 'd ext/pkg/bin/ rwxr-xr-x 5:6', '- ext/pkg/bin/tool rwxr-xr-x 5:6 4', 'h ext/pkg/hard rwxr-xr-x 5:6 => ext/pkg/bin/tool', 'l ext/pkg/t rwxrwxrwx 5:6 -> bin/tool'], name);
  }
  fs.writeFileSync(path.join(ctxDir, 'plain.gz'), execFileSync('gzip', ['-c'], { input: 'not a tar' }));
  const plain = await run(copyIns(['plain.gz'], '/g/', { kind: 'add' }));
  assert.equal(plain.list.length, 2);
  assert.match(plain.list[1]!, /^- g\/plain\.gz rw-r--r-- 0:0 \d+$/);
});

test('ADD of an xz archive without the xz program: a clear error naming the package', async () => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    const err = await fails(copyIns(['p.tar.xz'], '/ext', { kind: 'add' }), /cannot decompress p\.tar\.xz: xz needs the "xz" program, which is not installed/);
    assert.match(err.hint!, /apt-get install xz-utils/);
  } finally {
    process.env.PATH = saved;
  }
});

test('ADD a URL: --checksum verified, mode 600, name from the URL; a mismatch is an error', async () => {
  const body = 'downloaded\n';
  const server = http.createServer((req, res) => {
    if (req.url === '/files/tool.txt') {
      res.writeHead(200, { 'Last-Modified': 'Wed, 21 Oct 2015 07:28:00 GMT', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const url = `http://127.0.0.1:${port}/files/tool.txt`;
    const sum = 'sha256:' + createHash('sha256').update(body).digest('hex');
    const { r, list } = await run(copyIns([url], '/dl/', { kind: 'add', checksum: sum }));
    assert.equal(list, ['d dl/ rwxr-xr-x 0:0', '- dl/tool.txt rw------- 0:0 11']);
    const full = execFileSync('tar', ['--full-time', '-tvzf', store.path(r.digest), 'dl/tool.txt'], { encoding: 'utf8', env: { TZ: 'UTC' } });
    assert.match(full, /2015-10-21 07:28:00/);
    await fails(copyIns([url], '/dl/', { kind: 'add', checksum: 'sha256:' + '1'.repeat(64) }), /checksum mismatch/);
    await fails(copyIns([`http://127.0.0.1:${port}/missing`], '/dl/', { kind: 'add' }), /HTTP 404/);
  } finally {
    server.close();
  }
});

/** A layer made by GNU tar from a dir with a setcap'd file (plus a user.* xattr on every entry via a global PAX header). */
function capsTarball(name: string): string {
  const src = tempDir('caps-src');
  fs.mkdirSync(path.join(src, 'bin'));
  fs.writeFileSync(path.join(src, 'bin', 'x'), '#!/bin/sh\n');
  fs.chmodSync(path.join(src, 'bin', 'x'), 0o755);
  execFileSync(requireTool('setcap'), ['cap_net_bind_service=+ep', path.join(src, 'bin', 'x')]);
  const out = path.join(src, '..', name);
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--format=pax', '--pax-option=SCHILY.xattr.user.g:=global', '-czf', out, '-C', src, 'bin']);
  return out;
}

/** GNU tar's verbose listing of a layer's xattrs (`x: <bytes> <name>` lines), per member. */
function layerXattrs(digest: string): string {
  return execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-tvvzf', store.path(digest as `sha256:${string}`)], { encoding: 'utf8' });
}

function extractedCaps(digest: string, member: string): string {
  const dir = tempDir('caps-out');
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-xzf', store.path(digest as `sha256:${string}`), '-C', dir, member]);
  return execFileSync(requireTool('getcap'), [path.join(dir, member)], { encoding: 'utf8' }).replace(dir + '/', '').trim();
}

test('COPY --from keeps security.capability byte for byte and, like BuildKit, drops other xattrs', async () => {
  const blob = await store.putBytes(fs.readFileSync(capsTarball('from.tar.gz')));
  const from = await openImageFs(store, [blob.digest]);
  assert.is(from.stat('/bin/x')!.xattrs!['user.g'], 'global', 'the source image has a user.* xattr to drop');
  const { r, list } = await run(copyIns(['/bin/x'], '/x', { from: 'caps' }), { from });
  assert.equal(list, ['- x rwxr-xr-x 0:0 10']);
  const listing = layerXattrs(r.digest);
  assert.match(listing, /x: 20 security\.capability/);
  assert.not.match(listing, /user\.g/);
  assert.is(extractedCaps(r.digest, 'x'), 'x cap_net_bind_service=ep');
  // --chown keeps it too (BuildKit sets xattrs after chown, which would clear the capability).
  const owned = await run(copyIns(['/bin/x'], '/y', { from: 'caps', chown: '1000:1000' }), { from });
  assert.is(extractedCaps(owned.r.digest, 'y'), 'y cap_net_bind_service=ep');
});

test('ADD of a tar archive keeps security.capability of its files', async () => {
  fs.copyFileSync(capsTarball('add.tar.gz'), path.join(ctxDir, 'caps.tar.gz'));
  const { r } = await run(copyIns(['caps.tar.gz'], '/opt/caps/', { kind: 'add' }));
  assert.match(layerXattrs(r.digest), /x: 20 security\.capability/);
  assert.is(extractedCaps(r.digest, 'opt/caps/bin/x'), 'opt/caps/bin/x cap_net_bind_service=ep');
  fs.rmSync(path.join(ctxDir, 'caps.tar.gz'));
});

test('bad input: clear errors naming the line, nothing written', async () => {
  await fails(copyIns(['nope.txt'], '/x'), /source "nope\.txt" does not exist in the build context/);
  await fails(copyIns(['*.nothing'], '/x/'), /matches no files/);
  await fails(copyIns(['../etc/passwd'], '/x'), /outside the build context/);
  await fails(copyIns(['secret.key'], '/x'), /excluded by \.dockerignore/);
  await fails(copyIns(['a.txt', 'b.txt'], '/x'), /must be a directory and end with a \//);
  await fails(copyIns(['*.txt'], '/x'), /must be a directory and end with a \//);
  await fails(copyIns(['a.txt'], '/opt/afile/'), /\/opt\/afile is not a directory/);
  await fails(copyIns(['src'], '/opt/afile'), /\/opt\/afile is not a directory/);
  await fails(copyIns(['a.txt'], '/x', { chown: 'nobody' }), /unknown user "nobody"/);
  await fails(copyIns(['a.txt'], '/x', { chown: 'app:nogroup' }), /unknown group "nogroup"/);
  await fails(copyIns(['a.txt'], '/x', { chmod: 'u+q' }), /invalid --chmod/);
  await fails(copyIns(['https://example.com/repo.git'], '/x', { kind: 'add' }), /git repository .* not supported/);
  await fails(copyIns(['http://127.0.0.1:1/x'], '/x'), /COPY cannot download URLs/);
});

test('bad input: an unreadable context file fails before anything is written', async () => {
  // Root reads everything, so simulate EACCES through the ContextSource seam.
  class Unreadable extends FsContextSource {
    override async checkReadable(rel: string): Promise<void> {
      if (rel === 'b.txt') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    }
  }
  const context = new BuildContext({ dir: ctxDir, source: new Unreadable(ctxDir), ignore: new IgnoreMatcher([]) });
  const err = await fails(copyIns(['a.txt', 'b.txt'], '/x/'), /cannot read "b\.txt".*permission denied/, { context });
  assert.match(err.hint!, /readable/);
});

test('a context file that grew or shrank after its stat fails the layer (the sync read of small files checks the size too)', async () => {
  const { ContextSourceFs } = await import('../lib/engine/copy-source.js');
  const { writeLayer } = await import('../lib/layer/write.js');
  for (const [now, why] of [['grown by a byte\n', 'grew'], ['s', 'shrank']] as const) {
    write('changing.txt', 'original\n');
    const src = new ContextSourceFs(await openContext({ dir: ctxDir }));
    const stat = (await src.lstat('changing.txt'))!;
    fs.writeFileSync(path.join(ctxDir, 'changing.txt'), now);
    const entry = { path: '/changing.txt', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: stat.size, content: src.content('changing.txt', stat) };
    try {
      await writeLayer([entry], { store });
      assert.unreachable(`a file that ${why} must fail`);
    } catch (e) {
      assert.match((e as Error).message, /changing\.txt changed while it was being added to a layer/, why);
    }
  }
  fs.rmSync(path.join(ctxDir, 'changing.txt'));
});

test.after(() => fs.rmSync(root, { recursive: true, force: true }));
test.run();
