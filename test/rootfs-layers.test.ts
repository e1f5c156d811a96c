/**
 * Layered snapshots (lib/rootfs/layer-snapshots.ts) and the diff form of
 * LayerApplier: crafted layers (raw tars in a real BlobStore) applied one
 * diff dir per layer, then mounted read-only with the kernel's overlayfs
 * and compared with the flattened rootfs of the same chain (the reference:
 * test/rootfs.test.ts checks its semantics); the on-disk diff form
 * (whiteouts, opaque xattrs); escapes through lower layers; extending a
 * chain; atomic creation; the flattened fallback of ensureRootfsLowers.
 * Needs root (overlay mounts, trusted.* xattrs, owners).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { OcistackError } from '../lib/errors.js';
import { ensureLayerSnapshots, ensureRootfsLowers, layerSnapshotsRoot, materializeChain, snapshotsRoot } from '../lib/rootfs/index.js';
import type { Descriptor, Digest } from '../lib/image/types.js';
import type { BlobStore } from '../lib/image/store.js';
import { describeTree, diffTrees } from './helpers/tree-compare.js';
import type { RawEntry } from './helpers/raw-tar.js';
import { makeTempDir, requireTool } from './helpers/tools.js';
import { newStore, putLayers } from './rootfs-util.js';

const T = 1_600_000_000;
type Chain = { layers: Descriptor[]; diffIds: Digest[] };

function mountRo(cwd: string, lowers: string[], at: string): void {
  // A read-only overlay needs two lower dirs: an empty one at the bottom.
  const empty = makeTempDir('empty-lower');
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...lowers, empty].join(':')}`, at], { cwd, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
}

/** The chain applied in diff form and mounted read-only, described; and the flattened rootfs of the same chain, described. */
async function bothForms(layers: RawEntry[][]): Promise<{ merged: Map<string, string>; flat: Map<string, string>; store: BlobStore; chain: Chain; cacheDir: string }> {
  const store = newStore();
  const chain = await putLayers(store, layers);
  const cacheDir = makeTempDir('layers-cache');
  const s = await ensureLayerSnapshots({ store, ...chain, cacheDir });
  assert.is(s.applied, layers.length);
  const at = makeTempDir('layers-merged');
  mountRo(layerSnapshotsRoot(cacheDir), s.layers.map((l) => `${l.key}/fs`).reverse(), at);
  let merged: Map<string, string>;
  try {
    merged = describeTree(at, { mtimes: true, xattrs: true });
  } finally {
    spawnSync('umount', [at]);
  }
  const dest = join(makeTempDir('layers-flat'), 'rootfs');
  await materializeChain({ store, ...chain, dest });
  const flat = describeTree(dest, { mtimes: true, xattrs: true });
  // The roots' own lines differ only by what no layer sets (the flattened dest is made by mkdir, now).
  merged.delete('/');
  flat.delete('/');
  return { merged, flat, store, chain, cacheDir };
}

const base: RawEntry[] = [
  { name: 'etc/', type: '5', mtime: T },
  { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n', mtime: T + 1 },
  { name: 'etc/gone', content: 'x' },
  { name: 'etc/alsogone/', type: '5' },
  { name: 'etc/alsogone/deep', content: 'y' },
  { name: 'bin/', type: '5', mode: 0o755, mtime: T },
  { name: 'bin/tool', content: 'tool', mode: 0o4755 },
  { name: 'bin/alias', type: '2', linkname: 'tool', mtime: T + 2 },
  { name: 'tmp/', type: '5', mode: 0o1777, mtime: T },
  { name: 'opq/', type: '5', mtime: T },
  { name: 'opq/lower', content: 'lower' },
  { name: 'opq/sub/', type: '5' },
  { name: 'opq/sub/lower2', content: 'lower2' },
  { name: 'home/', type: '5', mtime: T },
  { name: 'home/app/', type: '5', mode: 0o700, uid: 1000, gid: 1000, mtime: T + 3 },
  { name: 'xa/', type: '5', mode: 0o750, uid: 7, gid: 8, mtime: T + 7, xattrs: { 'user.dir': 'lower', 'user.both': 'lower' } },
  { name: 'xa/f', content: 'f', mtime: T },
  { name: 'redo/', type: '5', mtime: T },
  { name: 'redo/old', content: 'old' },
  { name: 'f2d', content: 'file becomes dir' },
  { name: 'd2f/', type: '5' },
  { name: 'd2f/child', content: 'c' },
  { name: 'real/', type: '5', mtime: T },
  { name: 'real/inside', content: 'i', mtime: T },
  { name: 'via', type: '2', linkname: 'real', mtime: T },
  { name: 'deep/', type: '5', mtime: T },
  { name: 'deep/a/b/', type: '5', mtime: T },
  { name: 'deep/a/b/c', content: 'c', mtime: T },
];
const top: RawEntry[] = [
  { name: 'etc/.wh.gone' },
  { name: 'etc/.wh.alsogone' },
  { name: 'etc/.wh.never-there' },
  { name: 'opq/', type: '5', mtime: T + 4 },
  { name: 'opq/sub/', type: '5' },
  { name: 'opq/sub/new', content: 'new' },
  { name: 'opq/.wh..wh..opq' },
  { name: 'opq/kept', content: 'kept' },
  { name: 'opq/.wh.kept' },
  { name: 'bin/alias', type: '2', linkname: '/bin/hard', mtime: T + 5 },
  { name: 'bin/hard', type: '1', linkname: 'bin/tool' },
  { name: 'home/app/.profile', content: 'export A=1\n', uid: 1000, gid: 1000, mode: 0o600 },
  // A changed child: the parent is copied up with the lower's owner, mode, time and xattrs.
  { name: 'xa/new', content: 'n' },
  // A header for a lower dir: its metadata wins, the lower's other xattrs stay (as when merged in place).
  { name: 'deep/a/', type: '5', mode: 0o711, mtime: T + 8, xattrs: { 'user.both': 'upper' } },
  { name: 'deep/a/b/new', content: 'n' },
  // Removed, then made again in the same layer: the new dir must not show the old contents.
  { name: '.wh.redo' },
  { name: 'redo/', type: '5', mtime: T + 9 },
  { name: 'redo/fresh', content: 'fresh' },
  { name: 'f2d/', type: '5', mtime: T + 10 },
  { name: 'f2d/in', content: 'in' },
  { name: 'd2f', content: 'dir becomes file' },
  // Through a symlink of a lower layer: written into the lower's real dir.
  { name: 'via/added', content: 'a', mtime: T },
];
const third: RawEntry[] = [
  { name: 'opq/sub/.wh.new' },
  { name: 'redo/.wh..wh..opq' },
  { name: 'redo/third', content: '3' },
  { name: '.wh.via' },
  { name: 'real/.wh.inside' },
  { name: 'hl3', type: '1', linkname: 'xa/f' },
  { name: 'xa/', type: '5', mode: 0o750, uid: 7, gid: 8, mtime: T + 7, xattrs: { 'user.both': 'third' } },
];

// A hard link to a lower file copies its parents up without writing them; a file written below them
// later in the layer must make them written, so a later opaque marker above keeps it.
const linkThenOpaque: RawEntry[] = [
  { name: 'hl', type: '1', linkname: 'deep/a/b/c' },
  { name: 'deep/a/b/added', content: 'added' },
  { name: 'deep/.wh..wh..opq' },
];

test('diff form: the mounted layer snapshots show exactly the flattened rootfs', async () => {
  requireTool('getfattr');
  for (const layers of [[base, top], [base, top, third], [base, linkThenOpaque]]) {
    const { merged, flat } = await bothForms(layers);
    assert.equal(diffTrees(merged, flat, ['overlay of diff dirs', 'flattened']), [], `${layers.length} layers`);
    if (layers[1] === linkThenOpaque) assert.ok(merged.has('/deep/a/b/added') && !merged.has('/deep/a/b/c') && merged.has('/hl'), 'written below copied-up dirs, kept by the opaque marker');
  }
  const { flat } = await bothForms([base, top, third]);
  // And the reference itself is what the layers mean (a few spot checks; rootfs.test.ts has the rest).
  assert.ok(!flat.has('/redo/old') && !flat.has('/redo/fresh') && flat.has('/redo/third'));
  assert.ok(!flat.has('/via') && flat.has('/real/added') && !flat.has('/real/inside'));
  assert.match(flat.get('/xa')!, /d 0750 7:8 .*user\.dir=/);
});

test('diff form on disk: whiteouts are 0/0 character devices (only for names a lower has), opaque dirs carry trusted.overlay.opaque, lowers untouched', async () => {
  requireTool('getfattr');
  const store = newStore();
  const chain = await putLayers(store, [base, top]);
  const cacheDir = makeTempDir('layers-cache');
  const first = await ensureLayerSnapshots({ store, layers: chain.layers.slice(0, 1), diffIds: chain.diffIds.slice(0, 1), cacheDir });
  const lowerBefore = describeTree(first.layers[0]!.fs, { mtimes: true, xattrs: true });
  const s = await ensureLayerSnapshots({ store, ...chain, cacheDir });
  assert.is(s.applied, 1, 'the first layer was reused');
  assert.equal(diffTrees(describeTree(first.layers[0]!.fs, { mtimes: true, xattrs: true }), lowerBefore), [], 'the lower diff dir is not written');
  const d = s.layers[1]!.fs;
  for (const n of ['etc/gone', 'etc/alsogone']) {
    const st = fs.lstatSync(join(d, n));
    assert.ok(st.isCharacterDevice() && st.rdev === 0, `${n} is a whiteout`);
  }
  assert.not.ok(fs.existsSync(join(d, 'etc/never-there')), 'no whiteout for a name no lower has');
  const opaque = (p: string): string => spawnSync('getfattr', ['-h', '--only-values', '-n', 'trusted.overlay.opaque', join(d, p)], { encoding: 'utf8' }).stdout;
  assert.is(opaque('opq'), 'y');
  assert.is(opaque('redo'), 'y', 'a dir made again where a lower has one is opaque');
  assert.is(opaque('f2d'), '', 'over a lower file no opaque is needed');
  assert.equal(s.layers[1]!.opaque, ['opq', 'redo']);
  assert.equal(fs.readdirSync(join(d, 'opq')).sort(), ['kept', 'sub'], 'a whiteout of the same layer removes nothing it wrote');
  // Copied-up parent: the lower's metadata.
  const xa = fs.lstatSync(join(d, 'xa'));
  assert.is(xa.mode & 0o7777, 0o750);
  assert.is(`${xa.uid}:${xa.gid}`, '7:8');
  assert.is(Math.floor(xa.mtimeMs / 1000), T + 7);
  assert.equal(fs.readdirSync(join(d, 'xa')), ['new'], 'only the change is in the diff dir');
});

test('diff form: overlay xattrs and 0/0 devices a layer brings are skipped with a warning', async () => {
  const { merged, flat } = await bothForms([
    [{ name: 'd/', type: '5' }, { name: 'd/x', content: 'x' }],
    [
      { name: 'd/', type: '5', xattrs: { 'trusted.overlay.opaque': 'y' } },
      { name: 'd/y', content: 'y' },
    ],
  ]);
  assert.ok(merged.has('/d/x'), 'a layer\'s own trusted.overlay.opaque does not hide the lower');
  assert.ok(flat.has('/d/x'));
  const store = newStore();
  const chain = await putLayers(store, [[{ name: 'dev/', type: '5' }, { name: 'dev/wh', type: '3', devmajor: 0, devminor: 0 }, { name: 'dev/null', type: '3', devmajor: 1, devminor: 3 }]]);
  const s = await ensureLayerSnapshots({ store, ...chain, cacheDir: makeTempDir('layers-cache') });
  assert.ok(s.warnings.some((w) => w.code === 'ROOTFS_DEVICE_SKIPPED' && /0\/0/.test(w.message)), JSON.stringify(s.warnings));
  assert.not.ok(fs.existsSync(join(s.layers[0]!.fs, 'dev/wh')));
  assert.ok(fs.lstatSync(join(s.layers[0]!.fs, 'dev/null')).isCharacterDevice());
});

function sentinel(): { dir: string; outside: string; before: string } {
  const dir = makeTempDir('layers-escape');
  const outside = join(dir, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(join(outside, 'precious'), 'precious');
  return { dir, outside, before: [...describeTree(outside, { mtimes: true })].join('\n') };
}

test('diff form: symlinks and hard links of lower layers never lead outside the diff dir; lowers are never written', async () => {
  const s = sentinel();
  const store = newStore();
  const lower: RawEntry[] = [
    { name: 'host', type: '2', linkname: s.outside },
    { name: 'up', type: '2', linkname: '../../../../../../..' },
    { name: 'sl', type: '2', linkname: join(s.outside, 'precious') },
    { name: 'd/', type: '5' },
  ];
  const upper: RawEntry[] = [
    { name: 'host/pwned', content: 'pwned' },
    { name: 'up/outside/pwned', content: 'pwned' },
    { name: 'host/.wh.precious' },
    { name: 'up/.wh.outside' },
    { name: 'host/.wh..wh..opq' },
    { name: 'h', type: '1', linkname: 'sl' },
    { name: 'h', content: 'replaces the link, not its target' },
    { name: 'd', type: '2', linkname: s.dir },
    { name: 'd/outside/x', content: 'pwned' },
    // A directory of this layer replaced by a symlink, then written through (the applier must forget the directory).
    { name: 'n/', type: '5' },
    { name: 'n/outside/', type: '5' },
    { name: 'n/outside/f', content: 'f' },
    { name: 'n', type: '2', linkname: s.dir },
    { name: 'n/outside/y', content: 'pwned' },
  ];
  const chain = await putLayers(store, [lower, upper]);
  const cacheDir = join(s.dir, 'cache');
  const first = await ensureLayerSnapshots({ store, layers: chain.layers.slice(0, 1), diffIds: chain.diffIds.slice(0, 1), cacheDir });
  const lowerBefore = [...describeTree(first.layers[0]!.fs, { mtimes: true })].join('\n');
  const snap = await ensureLayerSnapshots({ store, ...chain, cacheDir });
  assert.is([...describeTree(s.outside, { mtimes: true })].join('\n'), s.before, 'nothing outside changed');
  assert.is(fs.readFileSync(join(s.outside, 'precious'), 'utf8'), 'precious');
  assert.is([...describeTree(first.layers[0]!.fs, { mtimes: true })].join('\n'), lowerBefore, 'the lower diff dir is unchanged');
  const d = snap.layers[1]!.fs;
  assert.ok(fs.lstatSync(join(d, s.outside.slice(1), 'pwned')).isFile(), 'the absolute symlink restarts at the rootfs');
  assert.ok(fs.lstatSync(join(d, 'outside/pwned')).isFile(), '.. stops at the rootfs');
  assert.ok(fs.lstatSync(join(d, s.dir.slice(1), 'outside/x')).isFile());
  assert.ok(fs.lstatSync(join(d, s.dir.slice(1), 'outside/y')).isFile(), 'through a symlink that replaced a directory of the same layer');
  assert.ok(fs.lstatSync(join(d, 'n')).isSymbolicLink());
  for (const [layers, code] of [
    [[lower, [{ name: 'x', type: '1', linkname: '../outside/precious' }]], 'ROOTFS_UNSAFE_ENTRY'],
    [[lower, [{ name: 'x', type: '1', linkname: join(s.outside, 'precious') }]], 'ROOTFS_BAD_LINK'],
    [[lower, [{ name: 'x', type: '1', linkname: 'host/precious' }]], 'ROOTFS_BAD_LINK'],
    [[lower, [{ name: '../escape', content: 'x' }]], 'ROOTFS_UNSAFE_ENTRY'],
  ] as [RawEntry[][], string][]) {
    const st = newStore();
    const c = await putLayers(st, layers);
    try {
      await ensureLayerSnapshots({ store: st, ...c, cacheDir });
      assert.unreachable(code);
    } catch (e) {
      assert.is((e as OcistackError).code, code, String(e));
    }
    assert.equal(fs.readdirSync(join(snapshotsRoot(cacheDir), 'tmp')), [], `${code}: no temp dir left`);
  }
  assert.is(fs.statSync(join(s.outside, 'precious')).nlink, 1, 'no hard link to the outside file');
  assert.is([...describeTree(s.outside, { mtimes: true })].join('\n'), s.before);
});

test('layer snapshots: extending a chain applies only the new layer (the lower blobs are gone), shared by chains with the same start', async () => {
  const store = newStore();
  const chain = await putLayers(store, [[{ name: 'a', content: 'a' }], [{ name: 'b', content: 'b' }], [{ name: '.wh.a' }, { name: 'c', content: 'c' }]]);
  const cacheDir = makeTempDir('layers-cache');
  const two = await ensureLayerSnapshots({ store, layers: chain.layers.slice(0, 2), diffIds: chain.diffIds.slice(0, 2), cacheDir });
  assert.is(two.applied, 2);
  for (const l of chain.layers.slice(0, 2)) fs.rmSync(store.path(l.digest));
  const three = await ensureLayerSnapshots({ store, ...chain, cacheDir });
  assert.is(three.applied, 1);
  assert.equal(three.layers.map((l) => l.made), [false, false, true]);
  assert.equal(three.layers.slice(0, 2).map((l) => l.dir), two.layers.map((l) => l.dir));
  assert.equal(fs.readdirSync(layerSnapshotsRoot(cacheDir)).length, 3);
  assert.is(three.view.lookup('a'), undefined, 'the merged view honours the whiteout');
  assert.ok(three.view.lookup('b')?.st.isFile() && three.view.lookup('c')?.st.isFile());
  const again = await ensureLayerSnapshots({ store, ...chain, cacheDir });
  assert.is(again.applied, 0);
});

test('layer snapshots: racing callers both succeed with one snapshot per layer; errors and aborts leave no temp dir', async () => {
  const store = newStore();
  const chain = await putLayers(store, [[{ name: 'a', content: 'a' }], [{ name: 'b', content: 'b' }]]);
  const cacheDir = makeTempDir('layers-cache');
  const [x, y] = await Promise.all([ensureLayerSnapshots({ store, ...chain, cacheDir }), ensureLayerSnapshots({ store, ...chain, cacheDir })]);
  assert.equal(x!.layers.map((l) => l.fs), y!.layers.map((l) => l.fs));
  assert.equal(fs.readdirSync(layerSnapshotsRoot(cacheDir)).length, 2);
  assert.equal(fs.readdirSync(join(snapshotsRoot(cacheDir), 'tmp')), [], 'the loser removed its copies');
  const other = makeTempDir('layers-cache');
  for (const [diffIds, code, signal] of [
    [[chain.diffIds[0]!, chain.diffIds[0]!], 'ROOTFS_DIFF_ID_MISMATCH', undefined],
    [chain.diffIds, 'ABORTED', AbortSignal.abort()],
  ] as const) {
    try {
      await ensureLayerSnapshots({ store, layers: chain.layers, diffIds, cacheDir: other, signal });
      assert.unreachable(code);
    } catch (e) {
      assert.is((e as OcistackError).code, code, String(e));
    }
    assert.equal(fs.readdirSync(join(snapshotsRoot(other), 'tmp')), [], `${code}: no temp dir`);
  }
  // A temp dir of a process that died (kill -9) is swept by the next process that makes a snapshot.
  const temps = new URL('../lib/temp-files.js', import.meta.url).href;
  const name = spawnSync(process.execPath, ['--input-type=module', '-e', `const { tempName } = await import(${JSON.stringify(temps)}); console.log(tempName('abc'))`], { encoding: 'utf8' }).stdout.trim();
  const stale = join(snapshotsRoot(cacheDir), 'tmp', name);
  fs.mkdirSync(join(stale, 'fs'), { recursive: true });
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
    const { ensureLayerSnapshots } = await import(${JSON.stringify(new URL('../lib/rootfs/index.js', import.meta.url).href)});
    const { BlobStore } = await import(${JSON.stringify(new URL('../lib/image/store.js', import.meta.url).href)});
    const extra = JSON.parse(process.argv[1]);
    await ensureLayerSnapshots({ store: new BlobStore(${JSON.stringify(store.root)}), layers: extra.layers, diffIds: extra.diffIds, cacheDir: ${JSON.stringify(cacheDir)} });
  `, JSON.stringify(await putLayers(store, [[{ name: 'z', content: 'z' }]]))], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.not.ok(fs.existsSync(stale), 'the dead owner\'s temp dir is swept');
});

test('ensureRootfsLowers: layer snapshots relative to their root while they fit, else one flattened snapshot', async () => {
  const store = newStore();
  const chain = await putLayers(store, [[{ name: 'a', content: 'a' }], [{ name: '.wh.a' }, { name: 'b', content: 'b' }]]);
  const cacheDir = makeTempDir('layers-cache');
  const fits = await ensureRootfsLowers({ store, ...chain, cacheDir, maxLowerChars: 4000 });
  assert.is(fits.form, 'layers');
  assert.is(fits.cwd, layerSnapshotsRoot(cacheDir));
  assert.is(fits.lowers.length, 2);
  for (const l of fits.lowers) assert.ok(fs.statSync(join(fits.cwd, l)).isDirectory() && !l.startsWith('/'), l);
  const deep = await ensureRootfsLowers({ store, ...chain, cacheDir, maxLowerChars: 100 });
  assert.is(deep.form, 'flattened');
  assert.is(deep.lowers.length, 1);
  assert.equal(fs.readdirSync(join(deep.cwd, deep.lowers[0]!)), ['b']);
  assert.ok(deep.view.lookup('b')?.st.isFile());
  assert.is(deep.view.lookup('a'), undefined);
  const many = await ensureRootfsLowers({ store, ...chain, cacheDir, maxLowerChars: 4000, maxLowers: 1 });
  assert.is(many.form, 'flattened', 'more layers than one mount may stack');
});

test.run();
