/**
 * writeLayer's entry checks and header encoding, verified with the readers
 * layers must satisfy: GNU tar (`--warning=all`, any stderr output fails)
 * and umoci unpack (Go's archive/tar). Paths are normalised, long names and
 * link targets go through PAX, big ids through PAX, device nodes keep their
 * numbers, and what tar cannot carry is refused with LAYER_ENTRY at the
 * instruction's location, leaving nothing in the store.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError } from '../lib/errors.js';
import { BlobStore } from '../lib/image/store.js';
import { normalizeLayerPath } from '../lib/layer/entry-path.js';
import { writeLayer } from '../lib/layer/index.js';
import type { LayerEntry, LayerResult } from '../lib/layer/types.js';
import { bytes, listLayer } from './copy-util.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';

const root = makeTempDir('layer-entry');
let n = 0;
const fresh = (): BlobStore => new BlobStore(path.join(root, `store-${n++}`));
const loc = { file: 'Dockerfile', line: 7 };

function f(p: string, content = 'x', extra: Partial<LayerEntry> = {}): LayerEntry {
  return { path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: Buffer.byteLength(content), content: bytes(content), ...extra };
}

/** Extract with GNU tar, failing on any warning; returns the directory. */
function gnuExtract(store: BlobStore, r: LayerResult): string {
  const dir = fs.mkdtempSync(path.join(root, 'x-'));
  const res = spawnSync('tar', ['--warning=all', '--numeric-owner', '-xzf', store.path(r.digest), '-C', dir], { encoding: 'utf8' });
  assert.is(res.stderr, '', 'GNU tar prints nothing');
  assert.is(res.status, 0);
  return dir;
}

/** The raw (uncompressed) tar. */
function rawTar(store: BlobStore, r: LayerResult): Buffer {
  return execFileSync('gzip', ['-dc', store.path(r.digest)], { maxBuffer: 1 << 26 });
}

/** Unpack the layer with umoci (Go's archive/tar); returns the rootfs. */
async function umociUnpack(store: BlobStore, r: LayerResult): Promise<string> {
  const umoci = requireTool('umoci');
  const dir = fs.mkdtempSync(path.join(root, 'oci-'));
  const layout = path.join(dir, 'layout');
  await runOk(umoci, ['init', '--layout', layout]);
  await runOk(umoci, ['new', '--image', `${layout}:t`]);
  const tarFile = path.join(dir, 'layer.tar');
  fs.writeFileSync(tarFile, rawTar(store, r));
  await runOk(umoci, ['raw', 'add-layer', '--image', `${layout}:t`, tarFile]);
  const res = spawnSync(umoci, ['unpack', '--image', `${layout}:t`, path.join(dir, 'bundle')], { encoding: 'utf8' });
  assert.is(res.status, 0, res.stderr);
  assert.not.match(res.stderr, /warn|error/i, 'umoci warns about nothing');
  return path.join(dir, 'bundle', 'rootfs');
}

async function rejects(entries: LayerEntry[], pattern: RegExp): Promise<void> {
  const store = fresh();
  const err = await writeLayer(entries, { store, location: loc }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, OcistackError, `refused: ${pattern}`);
  assert.is((err as OcistackError).code, 'LAYER_ENTRY');
  assert.match((err as OcistackError).message, pattern);
  assert.equal((err as OcistackError).location, loc, 'names the instruction');
  const blobs = path.join(store.root, 'blobs', 'sha256');
  assert.equal(fs.existsSync(blobs) ? fs.readdirSync(blobs) : [], [], 'no blob written');
  const tmp = path.join(store.root, 'tmp');
  assert.equal(fs.existsSync(tmp) ? fs.readdirSync(tmp) : [], [], 'no temp file left');
}

test('normalizeLayerPath: leading ./ and /, doubled slashes, . and inner .. are cleaned', () => {
  assert.is(normalizeLayerPath('./usr//bin/./x/'), '/usr/bin/x');
  assert.is(normalizeLayerPath('usr/lib/../bin'), '/usr/bin');
  assert.is(normalizeLayerPath('//a'), '/a');
  assert.is(normalizeLayerPath(''), '/');
  assert.throws(() => normalizeLayerPath('../etc/passwd'), /climbs above the image root/);
  assert.throws(() => normalizeLayerPath('/a/../../b'), /climbs above the image root/);
  assert.throws(() => normalizeLayerPath('/a\0b'), /NUL byte/);
});

test('writeLayer normalises paths and hard-link targets before writing', async () => {
  const store = fresh();
  const r = await writeLayer(
    [f('./a//b/', 'one'), f('c/./d', 'two'), f('/e/../g', 'three'), { path: '/h', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 1, linkTarget: './a//b' }],
    { store },
  );
  assert.equal(listLayer(store, r.digest), ['- a/b rw-r--r-- 0:0 3', '- c/d rw-r--r-- 0:0 3', '- g rw-r--r-- 0:0 5', 'h h rw-r--r-- 0:0 => a/b']);
  const dir = gnuExtract(store, r);
  assert.is(fs.readFileSync(path.join(dir, 'h'), 'utf8'), 'one');
  assert.is(fs.statSync(path.join(dir, 'h')).ino, fs.statSync(path.join(dir, 'a/b')).ino);
});

test('writeLayer refuses empty, NUL-containing and escaping paths with LAYER_ENTRY at the location', async () => {
  await rejects([f('../x')], /climbs above the image root/);
  await rejects([f('/a/../../x')], /climbs above the image root/);
  await rejects([f('/a\0b')], /NUL byte/);
  await rejects([f('')], /empty name/);
  await rejects([f('/')], /empty name/);
  await rejects([{ path: '/l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1, linkTarget: 'a\0b' }], /NUL byte/);
  await rejects([{ path: '/l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1, linkTarget: '' }], /empty target/);
  await rejects([{ path: '/h', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 1, linkTarget: '../../x' }], /climbs above/);
});

test('writeLayer refuses ids beyond 32 bits and negative ids; ids beyond octal go through PAX', async () => {
  await rejects([f('/a', 'x', { uid: 2 ** 32 })], /uid 4294967296 .* not a 32-bit id/);
  await rejects([f('/a', 'x', { gid: 2 ** 32 - 1 })], /gid 4294967295/);
  await rejects([f('/a', 'x', { gid: -1 })], /gid -1 .* not a 32-bit id/);
  await rejects([f('/a', 'x', { uid: 1.5 })], /uid 1.5/);
  const store = fresh();
  // 2^21 does not fit the 7 octal digits of the uid field; 2^32-2 is the largest id (2^32-1 is Linux's "no id").
  const r = await writeLayer([f('/big', 'x', { uid: 2 ** 21, gid: 2 ** 32 - 2 })], { store });
  assert.equal(listLayer(store, r.digest), [`- big rw-r--r-- ${2 ** 21}:${2 ** 32 - 2} 1`]);
  const raw = rawTar(store, r).toString('latin1');
  assert.match(raw, new RegExp(`\\d+ uid=${2 ** 21}\\n`));
  const dir = gnuExtract(store, r);
  assert.is(fs.statSync(path.join(dir, 'big')).uid, 2 ** 21);
  const rootfs = await umociUnpack(store, r);
  assert.is(fs.statSync(path.join(rootfs, 'big')).uid, 2 ** 21);
  assert.is(fs.statSync(path.join(rootfs, 'big')).gid, 2 ** 32 - 2);
});

test('long names and link targets: USTAR prefix when it fits, PAX path/linkpath otherwise; GNU tar and umoci agree', async () => {
  const store = fresh();
  const seg = (c: string, len: number): string => c.repeat(len);
  const split = `/${seg('p', 120)}/${seg('n', 90)}`; // fits prefix (155) + name (100)
  const longLeaf = `/d/${seg('l', 150)}`; // last component alone is > 100: needs PAX
  const deep = '/' + Array.from({ length: 30 }, (_, i) => `dir${i}-${seg('z', 10)}`).join('/'); // > 255 bytes
  const linkTarget = '/' + seg('t', 180);
  const entries: LayerEntry[] = [
    f(split, 'split'),
    f(longLeaf, 'leaf'),
    f(deep + '/file', 'deep'),
    { path: '/sym', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1, linkTarget },
    { path: '/hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 1, linkTarget: deep + '/file' },
  ];
  const r = await writeLayer(entries, { store });
  const raw = rawTar(store, r);
  // The split name has no PAX header of its own: its prefix field holds the directory.
  const header = raw.indexOf(Buffer.from(seg('n', 90) + '\0'));
  assert.ok(header > 0 && header % 512 === 0, 'the name field holds the last component');
  assert.is(raw.subarray(header + 345, header + 345 + 121).toString('latin1'), seg('p', 120) + '\0', 'USTAR prefix field');
  assert.is(raw.subarray(header - 512 + 156, header - 512 + 157).toString('latin1'), '1', 'the block before is the hard link before it, not a PAX header');
  const text = raw.toString('latin1');
  assert.match(text, new RegExp(`\\d+ path=d/${seg('l', 150)}\\n`));
  assert.match(text, new RegExp(`\\d+ linkpath=${linkTarget}\\n`));
  assert.match(text, new RegExp(`\\d+ linkpath=${deep.slice(1)}/file\\n`));
  const dir = gnuExtract(store, r);
  assert.is(fs.readFileSync(path.join(dir, split), 'utf8'), 'split');
  assert.is(fs.readFileSync(path.join(dir, longLeaf), 'utf8'), 'leaf');
  assert.is(fs.readlinkSync(path.join(dir, 'sym')), linkTarget);
  assert.is(fs.statSync(path.join(dir, 'hard')).ino, fs.statSync(path.join(dir, deep, 'file')).ino);
  const rootfs = await umociUnpack(store, r);
  assert.is(fs.readFileSync(path.join(rootfs, split), 'utf8'), 'split');
  assert.is(fs.readFileSync(path.join(rootfs, longLeaf), 'utf8'), 'leaf');
  assert.is(fs.readFileSync(path.join(rootfs, deep, 'file'), 'utf8'), 'deep');
  assert.is(fs.readlinkSync(path.join(rootfs, 'sym')), linkTarget);
});

test('non-ASCII names go through PAX path (UTF-8), as Go writes them', async () => {
  const store = fresh();
  const r = await writeLayer([f('/café/ß', 'u'), { path: '/l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1, linkTarget: 'café/ß' }], { store });
  const text = rawTar(store, r).toString('utf8');
  assert.match(text, /\d+ path=café\/ß\n/);
  assert.match(text, /\d+ linkpath=café\/ß\n/);
  const dir = gnuExtract(store, r);
  assert.is(fs.readFileSync(path.join(dir, 'café', 'ß'), 'utf8'), 'u');
  const rootfs = await umociUnpack(store, r);
  assert.is(fs.readFileSync(path.join(rootfs, 'café', 'ß'), 'utf8'), 'u');
});

test('times before 1970 are stored as 0 (GNU tar warns on them)', async () => {
  const store = fresh();
  const r = await writeLayer([f('/old', 'o', { mtime: -5 })], { store });
  const dir = gnuExtract(store, r);
  assert.is(fs.statSync(path.join(dir, 'old')).mtimeMs, 0);
});

test('device nodes and FIFOs are written with their type and numbers', async () => {
  const store = fresh();
  const r = await writeLayer(
    [
      { path: '/dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 1, devmajor: 1, devminor: 3 },
      { path: '/dev/loop9', type: 'block', mode: 0o660, uid: 0, gid: 6, mtime: 1, devmajor: 7, devminor: 9 },
      { path: '/run/fifo', type: 'fifo', mode: 0o644, uid: 0, gid: 0, mtime: 1 },
    ],
    { store },
  );
  const lines = execFileSync('tar', ['--numeric-owner', '-tvzf', store.path(r.digest)], { encoding: 'utf8' }).trim().split('\n');
  assert.ok(lines.some((l) => /^brw-rw---- 0\/6\s+7,9 .* dev\/loop9$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^crw-rw-rw- 0\/0\s+1,3 .* dev\/null$/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^prw-r--r-- 0\/0\s+0 .* run\/fifo$/.test(l)), lines.join('\n'));
  const dir = gnuExtract(store, r);
  const st = fs.statSync(path.join(dir, 'dev/loop9'));
  assert.ok(st.isBlockDevice());
  assert.is(st.rdev, (7 << 8) | 9);
  assert.ok(fs.statSync(path.join(dir, 'run/fifo')).isFIFO());
  await rejects([{ path: '/dev/x', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 1, devmajor: 2 ** 21, devminor: 0 }], /device major/);
});

test.run();
