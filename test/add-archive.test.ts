/**
 * ADD of local archives keeps every member, as Docker does. The archives are
 * made here with GNU tar from real files: sparse files (truncate -s) in GNU
 * format and PAX sparse 0.0, 0.1 and 1.0, character and block devices
 * (mknod, as root), FIFOs (mkfifo), hard links. Each is ADDed by a real
 * build FROM scratch, the image is unpacked with umoci (Go's archive/tar)
 * and checked byte for byte and by type and major/minor; the layer is also
 * read with GNU tar. Bad archives (a hard link to a member that is missing
 * or comes later, an unknown member type, `..` names, whiteout names) fail
 * at the ADD line naming the member. Symlinked directories made earlier in
 * the archive are followed with the destination as root, as Docker's and
 * Buildah's unpackers do (Buildah 1.28 fails instead when the real directory
 * does not exist; Docker creates it).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from '../lib/engine/build.js';
import { OcistackError } from '../lib/errors.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';

const root = makeTempDir('add-archive');
let n = 0;

function sh(cmd: string, cwd = root): string {
  return execFileSync('bash', ['-euc', cmd], { cwd, encoding: 'utf8' });
}

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** A source tree with sparse files, devices, a FIFO and a hard link. */
function makeSource(): string {
  const src = path.join(root, 'src');
  fs.mkdirSync(src);
  sh(
    [
      'truncate -s 5M sparse', // holes with data in the middle
      "printf 'hello' | dd of=sparse bs=1 seek=1000000 conv=notrunc status=none",
      "printf 'world' | dd of=sparse bs=1 seek=3000000 conv=notrunc status=none",
      'truncate -s 1M holes-only', // no data at all
      // 30 data pieces: more than the 4 map entries of a GNU header, so extension blocks follow it.
      'truncate -s 20M many && for i in $(seq 1 30); do printf "piece$i" | dd of=many bs=1 seek=$((i * 600000)) conv=notrunc status=none; done',
      "head -c 70000 /dev/urandom > dense && truncate -s 9000000 dense", // data, then a hole to the end
      'mknod null c 1 3 && mknod loop9 b 7 9 && mkfifo pipe',
      'chmod 640 loop9 && chown 0:6 loop9',
      "echo linked > file && ln file file-link",
      'mkdir -p sub && echo s > sub/s',
    ].join('\n'),
    src,
  );
  return src;
}

const SRC = makeSource();

/** Build `ADD <archive> <dest>` FROM scratch; returns the unpacked rootfs and the layer blob. */
async function addArchive(archive: string, dest = '/out/'): Promise<{ rootfs: string; layer: string }> {
  const dir = path.join(root, `b${n++}`);
  const ctx = path.join(dir, 'ctx');
  fs.mkdirSync(ctx, { recursive: true });
  fs.copyFileSync(archive, path.join(ctx, path.basename(archive)));
  const out = path.join(dir, 'layout');
  const r = await build({ context: ctx, dockerfileText: `FROM scratch\nADD ${path.basename(archive)} ${dest}\n`, tags: ['add:1'], output: { type: 'oci', dest: out }, cacheDir: path.join(dir, 'cache') });
  assert.is(r.layers.length, 1);
  const bundle = path.join(dir, 'bundle');
  await runOk(requireTool('umoci'), ['unpack', '--image', `${out}:1`, bundle]);
  return { rootfs: path.join(bundle, 'rootfs'), layer: path.join(out, 'blobs', 'sha256', r.layers[0]!.digest.slice(7)) };
}

async function addFails(archive: string, pattern: RegExp): Promise<OcistackError> {
  const err = await addArchive(archive).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, OcistackError, `ADD of ${path.basename(archive)} fails`);
  const e = err as OcistackError;
  assert.is(e.code, 'ADD_ARCHIVE');
  assert.is(path.basename(e.location?.file ?? ''), 'Dockerfile', 'names the Dockerfile');
  assert.is(e.location?.line, 2, 'names the ADD line');
  assert.match(e.message, pattern);
  return e;
}

/** Every member of SRC, checked in the unpacked image and in the layer. */
function checkMembers(rootfs: string, layer: string): void {
  const out = path.join(rootfs, 'out');
  for (const f of ['sparse', 'holes-only', 'many', 'dense', 'file', 'sub/s']) {
    assert.is(fs.statSync(path.join(out, f)).size, fs.statSync(path.join(SRC, f)).size, `${f}: size`);
    assert.is(sha(path.join(out, f)), sha(path.join(SRC, f)), `${f}: bytes`);
  }
  const nul = fs.lstatSync(path.join(out, 'null'));
  assert.ok(nul.isCharacterDevice(), 'null is a character device');
  assert.is(nul.rdev, fs.lstatSync(path.join(SRC, 'null')).rdev, 'null: 1,3');
  const loop = fs.lstatSync(path.join(out, 'loop9'));
  assert.ok(loop.isBlockDevice(), 'loop9 is a block device');
  assert.is(loop.rdev, (7 << 8) | 9, 'loop9: 7,9');
  assert.is(loop.mode & 0o7777, 0o640);
  assert.is(loop.gid, 6);
  assert.ok(fs.lstatSync(path.join(out, 'pipe')).isFIFO(), 'pipe is a FIFO');
  assert.is(fs.statSync(path.join(out, 'file')).ino, fs.statSync(path.join(out, 'file-link')).ino, 'hard link kept');
  // GNU tar's view of the layer: types and device numbers in the headers.
  const listing = execFileSync('tar', ['--numeric-owner', '-tvzf', layer], { encoding: 'utf8' });
  assert.match(listing, /^crw-r--r-- 0\/0 +1,3 .* out\/null$/m);
  assert.match(listing, /^brw-r----- 0\/6 +7,9 .* out\/loop9$/m);
  assert.match(listing, /^prw-r--r-- 0\/0 +0 .* out\/pipe$/m);
  assert.match(listing, /^-rw-r--r-- 0\/0 +5242880 .* out\/sparse$/m);
}

for (const [label, flags] of [
  ['GNU format (--sparse --format=gnu)', ['--sparse', '--format=gnu']],
  ['PAX sparse 0.0', ['--sparse', '--format=posix', '--sparse-version=0.0']],
  ['PAX sparse 0.1', ['--sparse', '--format=posix', '--sparse-version=0.1']],
  ['PAX sparse 1.0', ['--sparse', '--format=posix', '--sparse-version=1.0']],
] as const) {
  test(`ADD keeps every member of a ${label} archive: sparse files, devices, FIFO, hard link`, async () => {
    const archive = path.join(root, `members-${n++}.tar.gz`);
    execFileSync('tar', [...flags, '-czf', archive, '-C', SRC, '.']);
    // The archive really stores the files sparsely (35 MB of files in well under 1 MiB of tar), else this would prove nothing.
    assert.ok(execFileSync('gzip', ['-dc', archive], { maxBuffer: 1 << 25 }).length < 1 << 20, 'sparse members in the archive');
    const { rootfs, layer } = await addArchive(archive);
    checkMembers(rootfs, layer);
  });
}

test('a symlinked directory earlier in the archive is followed, with the destination as root', async () => {
  const a = path.join(root, 'links');
  sh(`mkdir -p ${a}/s1 ${a}/s2/d ${a}/s2/e ${a}/s2/f && ln -s /real ${a}/s1/d && ln -s ../../../etc ${a}/s1/e && ln -s sub ${a}/s1/f
echo X > ${a}/s2/d/x && echo Y > ${a}/s2/e/y && echo Z > ${a}/s2/f/z
tar -cf ${a}/links.tar -C ${a}/s1 d e f && tar -rf ${a}/links.tar -C ${a}/s2 d/x e/y f/z`);
  for (const [dest, prefix] of [['/', ''], ['/dst/', '/dst']] as const) {
    const { rootfs } = await addArchive(path.join(a, 'links.tar'), dest);
    assert.is(fs.readlinkSync(path.join(rootfs, prefix, 'd')), '/real', 'the symlink itself is kept');
    assert.is(fs.readFileSync(path.join(rootfs, prefix, 'real/x'), 'utf8'), 'X\n', `d/x lands at ${prefix}/real/x`);
    assert.is(fs.readFileSync(path.join(rootfs, prefix, 'etc/y'), 'utf8'), 'Y\n', `e -> ../../../etc stays inside ${dest}`);
    assert.is(fs.readFileSync(path.join(rootfs, prefix, 'sub/z'), 'utf8'), 'Z\n', 'relative link');
    assert.not.ok(fs.existsSync(path.join(rootfs, '..', 'etc', 'y')), 'nothing outside the root');
  }
});

test('a hard link to a member that is missing, or only comes later, is an error naming the member', async () => {
  const a = path.join(root, 'hard');
  fs.mkdirSync(a);
  sh(`cd ${a} && echo data > f && ln f h && tar -cf missing.tar f h && tar --delete -f missing.tar f
tar -cf later.tar f h && tar --delete -f later.tar f && tar -rf later.tar f && tar -tvf later.tar >&2`);
  await addFails(path.join(a, 'missing.tar'), /hard link "h" points to "f", which is not an earlier member of the archive/);
  await addFails(path.join(a, 'later.tar'), /hard link "h" points to "f", which is not an earlier member/);
});

test('members ADD cannot keep are errors, never dropped: unknown types, .. names, whiteout names', async () => {
  const a = path.join(root, 'odd');
  fs.mkdirSync(a);
  sh(`cd ${a} && echo x > f && tar -V my-label -cf label.tar f
mkdir -p w && echo w > w/.wh.gone && tar -cf whiteout.tar -C w .wh.gone
mkdir -p in && echo e > escape && tar -cf escape.tar -P in/../../odd/escape 2>/dev/null || tar -cf escape.tar --transform='s,^,../,' escape`);
  await addFails(path.join(a, 'label.tar'), /archive member "my-label" has tar type 'V', which ADD cannot unpack/);
  await addFails(path.join(a, 'whiteout.tar'), /archive member "\.wh\.gone" has an OCI whiteout name/);
  await addFails(path.join(a, 'escape.tar'), /points outside the destination directory/);
});

test.run();
