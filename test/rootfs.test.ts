/**
 * lib/rootfs with crafted layers (raw tar bytes written by the test, gzip,
 * in a real BlobStore): layer semantics (whiteouts, opaque dirs, modes,
 * owners, times, links, xattrs, devices, FIFOs), escape attempts that must
 * not touch anything outside the rootfs, ChainIDs, and snapshots.
 * Owners, devices and security.* xattrs need root (this suite runs as root);
 * the unprivileged behaviour is forced with `privileged: false`.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { OcistackError } from '../lib/errors.js';
import { BlobStore } from '../lib/image/store.js';
import { excludeFromLayerAudit } from './layer-audit-keep.js';
import { chainId, chainIds, ensureSnapshot, materializeChain, snapshotsRoot } from '../lib/rootfs/index.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import type { Digest } from '../lib/image/types.js';
import { describeTree } from './helpers/tree-compare.js';
import type { RawEntry } from './helpers/raw-tar.js';
import { makeTempDir, requireTool } from './helpers/tools.js';
import { newStore, putLayers } from './rootfs-util.js';

const isRoot = process.getuid?.() === 0;
const T = 1_600_000_000;

async function materialize(layers: RawEntry[][], opts: { privileged?: boolean; dest?: string } = {}) {
  const store = newStore();
  const chain = await putLayers(store, layers);
  const dest = opts.dest ?? join(makeTempDir('rootfs'), 'rootfs');
  const events: ProgressEvent[] = [];
  const r = await materializeChain({ store, ...chain, dest, privileged: opts.privileged, onProgress: (e) => events.push(e) });
  return { ...r, dest, events, tree: describeTree(dest, { mtimes: true, xattrs: true }) };
}

function line(tree: Map<string, string>, p: string): string {
  const l = tree.get(p);
  assert.ok(l, `${p} must exist; tree:\n${[...tree.values()].join('\n')}`);
  return l!;
}

test('layer semantics: files, modes, owners, times, symlinks, hardlinks, whiteouts, opaque dirs', async () => {
  const base: RawEntry[] = [
    { name: 'etc/', type: '5', mtime: T },
    { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n', mtime: T + 1 },
    { name: 'etc/gone', content: 'x' },
    { name: 'etc/empty', content: '', mode: 0o600, mtime: T + 6 },
    { name: 'etc/alsogone/', type: '5' },
    { name: 'etc/alsogone/deep', content: 'y' },
    { name: 'bin/', type: '5', mode: 0o755 },
    { name: 'bin/tool', content: 'tool', mode: 0o4755, uid: 0, gid: 0 },
    { name: 'bin/sg', content: 'sg', mode: 0o2711, uid: 1000, gid: 50 },
    { name: 'bin/alias', type: '2', linkname: 'tool', mtime: T + 2 },
    { name: 'bin/hard', type: '1', linkname: 'bin/tool' },
    { name: 'tmp/', type: '5', mode: 0o1777 },
    { name: 'opq/', type: '5' },
    { name: 'opq/lower', content: 'lower' },
    { name: 'opq/sub/', type: '5' },
    { name: 'opq/sub/lower2', content: 'lower2' },
    { name: 'home/app/', type: '5', mode: 0o700, uid: 1000, gid: 1000, mtime: T + 3 },
  ];
  const top: RawEntry[] = [
    { name: 'etc/.wh.gone' },
    { name: 'etc/.wh.alsogone' },
    { name: 'opq/', type: '5', mtime: T + 4 },
    { name: 'opq/sub/', type: '5' },
    { name: 'opq/sub/new', content: 'new' },
    { name: 'opq/.wh..wh..opq' },
    // Same layer: a whiteout never removes what this layer wrote.
    { name: 'opq/kept', content: 'kept' },
    { name: 'opq/.wh.kept' },
    { name: 'bin/alias', type: '2', linkname: '/bin/hard', mtime: T + 5 },
    { name: 'home/app/.profile', content: 'export A=1\n', uid: 1000, gid: 1000, mode: 0o600 },
  ];
  const r = await materialize([base, top]);
  const t = r.tree;
  assert.ok(!t.has('/etc/gone'), 'whiteout removes a file of a lower layer');
  assert.ok(!t.has('/etc/alsogone') && !t.has('/etc/alsogone/deep'), 'whiteout removes a directory with its contents');
  assert.ok(!t.has('/opq/lower') && !t.has('/opq/sub/lower2'), 'opaque hides everything a lower layer had in the directory');
  assert.ok(t.has('/opq/sub/new') && t.has('/opq/kept'), 'opaque and whiteouts keep what the same layer wrote');
  assert.match(line(t, '/bin/tool'), /^\/bin\/tool f 4755 0:0 /);
  assert.match(line(t, '/etc/empty'), new RegExp(`^/etc/empty f 0600 0:0 size=0 .* mtime=${T + 6}$`), 'an empty file gets its metadata too');
  assert.match(line(t, '/bin/sg'), /^\/bin\/sg f 2711 1000:50 /);
  assert.match(line(t, '/tmp'), /^\/tmp d 1777 /);
  assert.match(line(t, '/bin/tool'), /link=\/bin\/hard/, 'hard link shares the inode');
  assert.match(line(t, '/bin/hard'), /link=\/bin\/hard/);
  assert.match(line(t, '/bin/alias'), /-> \/bin\/hard /, 'a symlink is replaced by the upper layer');
  assert.match(line(t, '/etc/passwd'), new RegExp(`mtime=${T + 1}`));
  assert.match(line(t, '/etc'), new RegExp(`^/etc d 0755 0:0 mtime=${T}$`), 'a lower directory keeps its time after a whiteout removed children');
  assert.match(line(t, '/opq'), new RegExp(`mtime=${T + 4}`), 'directory time set after its children');
  assert.match(line(t, '/home/app'), new RegExp(`^/home/app d 0700 1000:1000 mtime=${T + 3}$`), 'time of a directory whose children came in a later layer');
  assert.match(line(t, '/home/app/.profile'), /f 0600 1000:1000 size=11/);
  assert.match(line(t, '/bin/alias'), new RegExp(`-> /bin/hard mtime=${T + 5}$`), 'a symlink\'s own time (lutimes)');
  assert.equal(r.warnings, []);
});

test('xattrs, FIFOs and device nodes (root); unprivileged: devices and owners skipped with one warning each', async () => {
  requireTool('setfattr');
  const cap = Buffer.from('0100000200040000000000000000000000000000', 'hex');
  const layer: RawEntry[] = [
    { name: 'bin/', type: '5' },
    { name: 'bin/ping', content: 'ping', mode: 0o755, xattrs: { 'security.capability': cap, 'user.note': 'a=b\nc' } },
    { name: 'dev/', type: '5' },
    { name: 'dev/null', type: '3', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'dev/loop0', type: '4', mode: 0o660, gid: 6, devmajor: 7, devminor: 0 },
    { name: 'run/', type: '5' },
    { name: 'run/fifo', type: '6', mode: 0o620, uid: 1000, gid: 1000 },
  ];
  if (isRoot) {
    const r = await materialize([layer]);
    const t = r.tree;
    assert.match(line(t, '/bin/ping'), /xattrs=security\.capability=0x0100000200040000000000000000000000000000,user\.note=0x613d620a63/);
    assert.match(line(t, '/dev/null'), /^\/dev\/null c 0666 0:0 dev=1:3/);
    assert.match(line(t, '/dev/loop0'), /^\/dev\/loop0 b 0660 0:6 dev=7:0/);
    assert.match(line(t, '/run/fifo'), /^\/run\/fifo p 0620 1000:1000/);
    assert.equal(r.warnings, []);
  }
  const u = await materialize([layer], { privileged: false });
  assert.ok(!u.tree.has('/dev/null') && !u.tree.has('/dev/loop0'), 'no device nodes without privileges');
  assert.match(line(u.tree, '/run/fifo'), /^\/run\/fifo p 0620 /, 'a FIFO needs no privileges');
  const codes = u.warnings.map((w) => `${w.code}:${w.count}`).sort();
  assert.ok(codes.includes('ROOTFS_DEVICE_SKIPPED:2'), codes.join(' '));
  assert.ok(codes.includes('ROOTFS_OWNER_SKIPPED:1'), codes.join(' '));
  assert.is(u.events.filter((e) => e.type === 'warning' && /device node/.test(e.message)).length, 1, 'one warning event per kind');
});

test('as a real unprivileged user (nobody, via setpriv): read-only dirs stay writable while applying, owners and devices skipped', async () => {
  if (!isRoot) return; // needs root to switch to nobody; as non-root the other tests already run unprivileged
  const setpriv = requireTool('setpriv');
  // Under /tmp, not the test's private (0700) temp dir, so nobody can reach it.
  const work = fs.mkdtempSync('/tmp/ocistack-rootfs-nobody-');
  try {
    fs.chmodSync(work, 0o755);
    const store = new BlobStore(join(work, 'store'));
    excludeFromLayerAudit(store.root); // hand-made layers (see rootfs-util.ts)
    const chain = await putLayers(store, [
      [
        { name: 'ro/', type: '5', mode: 0o555 },
        { name: 'ro/a', content: 'a' },
        { name: 'ro/sub/', type: '5', mode: 0o500 },
        { name: 'ro/sub/f', content: 'f', mode: 0o400 },
        { name: 'dev/', type: '5' },
        { name: 'dev/null', type: '3', devmajor: 1, devminor: 3 },
        { name: 'owned', content: 'o', uid: 1000, gid: 1000 },
      ],
      [{ name: 'ro/b', content: 'b' }, { name: 'ro/.wh.sub' }],
    ]);
    for (const p of [store.root, join(store.root, 'blobs'), join(store.root, 'blobs', 'sha256')]) fs.chmodSync(p, 0o755);
    const out = join(work, 'out');
    fs.mkdirSync(out);
    fs.chownSync(out, 65534, 65534);
    const lib = new URL('../lib/rootfs/index.js', import.meta.url).pathname;
    const storeLib = new URL('../lib/image/store.js', import.meta.url).pathname;
    const script = `
      const { materializeChain } = await import(${JSON.stringify(lib)});
      const { BlobStore } = await import(${JSON.stringify(storeLib)});
      const r = await materializeChain({ store: new BlobStore(${JSON.stringify(store.root)}), layers: ${JSON.stringify(chain.layers)}, diffIds: ${JSON.stringify(chain.diffIds)}, dest: ${JSON.stringify(join(out, 'rootfs'))} });
      console.log(JSON.stringify(r.warnings.map((w) => w.code + ':' + w.count)));`;
    const r = spawnSync(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const warnings = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
    assert.equal(warnings.map((w) => w.split(':')[0]).sort(), ['ROOTFS_DEVICE_SKIPPED', 'ROOTFS_OWNER_SKIPPED'], warnings.join(' '));
    const t = describeTree(join(out, 'rootfs'));
    assert.match(line(t, '/ro'), /^\/ro d 0555 65534:65534$/, 'the header mode is back after the layer');
    assert.ok(t.has('/ro/a') && t.has('/ro/b'), 'a later layer wrote into a 0555 directory');
    assert.ok(!t.has('/ro/sub'), 'a 0500 directory was removed by a whiteout');
    assert.ok(!t.has('/dev/null'));
    assert.match(line(t, '/owned'), / f 0644 65534:65534 /);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

// --- escapes ---------------------------------------------------------------

/**
 * A sentinel directory holds the rootfs and, beside it, files a hostile
 * layer aims at. Its description (minus the rootfs) must not change.
 */
function sentinel(): { dir: string; dest: string; outsideFile: string; outsideDir: string; before: string } {
  const dir = makeTempDir('rootfs-sentinel');
  const outsideDir = join(dir, 'outside');
  fs.mkdirSync(outsideDir);
  const outsideFile = join(dir, 'outside-file');
  fs.writeFileSync(outsideFile, 'precious');
  fs.writeFileSync(join(outsideDir, 'keep'), 'keep');
  const dest = join(dir, 'rootfs');
  return { dir, dest, outsideFile, outsideDir, before: outsideState(dir) };
}

function outsideState(dir: string): string {
  return [...describeTree(dir, { mtimes: true })]
    .filter(([p]) => p !== '/' && p !== '/rootfs' && !p.startsWith('/rootfs/'))
    .map(([, l]) => l)
    .join('\n');
}

async function expectFails(layers: RawEntry[][], code: string, dest: string): Promise<OcistackError> {
  try {
    await materialize(layers, { dest });
  } catch (e) {
    assert.instance(e, OcistackError, String(e));
    assert.is((e as OcistackError).code, code, (e as Error).message);
    return e as OcistackError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('escape: ".." names fail the layer (ROOTFS_UNSAFE_ENTRY); nothing is written outside', async () => {
  // The last name is longer than 100 bytes: it comes from a PAX path record.
  for (const name of ['../outside-file', 'a/../../outside/x', './../../../../tmp/pwned', '../rootfs2/x', 'a/'.repeat(40) + '../'.repeat(41) + 'outside/x']) {
    const s = sentinel();
    const e = await expectFails([[{ name: 'ok', content: 'ok' }, { name, content: 'pwned' }]], 'ROOTFS_UNSAFE_ENTRY', s.dest);
    assert.ok(e.message.includes(name), e.message);
    assert.is(outsideState(s.dir), s.before, name);
    assert.is(fs.readFileSync(s.outsideFile, 'utf8'), 'precious');
  }
});

test('escape: absolute names and symlinked parents resolve inside the rootfs', async () => {
  const s = sentinel();
  const layers: RawEntry[][] = [
    [
      { name: '/abs/file', content: 'abs' },
      { name: 'host', type: '2', linkname: s.outsideDir },
      { name: 'host/pwned', content: 'pwned' },
      { name: 'up', type: '2', linkname: '../../../..' },
      { name: 'up/outside-file', content: 'pwned' },
      { name: 'hostetc', type: '2', linkname: '/etc' },
      { name: 'hostetc/passwd-new', content: 'x' },
      { name: 'chain', type: '2', linkname: 'up/up/host' },
      { name: 'chain/deeper/x', content: 'x' },
      // Every entry type goes through the same parent resolution.
      { name: 'host/dir/', type: '5' },
      { name: 'host/sl', type: '2', linkname: '/etc/shadow' },
      { name: 'host/hl', type: '1', linkname: 'abs/file' },
      { name: 'host/fifo', type: '6' },
      ...(isRoot ? [{ name: 'host/null', type: '3', devmajor: 1, devminor: 3 }] : []),
    ],
    // A directory replaced by a symlink, then written through.
    [{ name: 'd/', type: '5' }, { name: 'd/f', content: 'f' }],
    [{ name: 'd', type: '2', linkname: s.dir }, { name: 'd/outside-file', content: 'pwned' }, { name: 'd/outside/keep', content: 'pwned' }],
    // The same within one layer: the applier's memory of directories it made must forget a removed one.
    [
      { name: 'e/', type: '5' },
      { name: 'e/outside/', type: '5' },
      { name: 'e/outside/f', content: 'f' },
      { name: 'e', type: '2', linkname: s.dir },
      { name: 'e/outside/same-layer', content: 'pwned' },
    ],
  ];
  const r = await materialize(layers, { dest: s.dest });
  assert.is(outsideState(s.dir), s.before, 'nothing outside the rootfs changed');
  assert.is(fs.readFileSync(s.outsideFile, 'utf8'), 'precious');
  assert.ok(!fs.existsSync('/etc/passwd-new'), 'the host /etc is untouched');
  const t = r.tree;
  assert.match(line(t, '/abs/file'), / f 0644 /);
  assert.match(line(t, `${s.outsideDir}/pwned`), / f /, 'absolute symlink target restarts at the rootfs');
  assert.match(line(t, '/outside-file'), / f /, '../../.. stops at the rootfs');
  assert.match(line(t, '/etc/passwd-new'), / f /);
  assert.match(line(t, `${s.outsideDir}/deeper/x`), / f /);
  for (const [n, type] of [['dir', 'd'], ['sl', 'l'], ['hl', 'f'], ['fifo', 'p'], ...(isRoot ? [['null', 'c']] : [])]) {
    assert.match(line(t, `${s.outsideDir}/${n}`), new RegExp(` ${type} `));
  }
  assert.match(line(t, `${s.dir}/outside-file`), / f /, 'write through a symlink that replaced a directory');
  assert.match(line(t, `${s.dir}/outside/keep`), / f /);
  assert.match(line(t, `${s.dir}/outside/same-layer`), / f /, 'write through a symlink that replaced a directory of the same layer');
  assert.match(line(t, '/e'), / l /);
});

test('escape: hard links out of the rootfs fail; links at symlinks never write through them', async () => {
  const s1 = sentinel();
  await expectFails([[{ name: 'h', type: '1', linkname: '../outside-file' }]], 'ROOTFS_UNSAFE_ENTRY', s1.dest);
  assert.is(outsideState(s1.dir), s1.before);
  const s2 = sentinel();
  // An absolute host path is a path inside the rootfs, where it does not exist.
  await expectFails([[{ name: 'h', type: '1', linkname: s2.outsideFile }]], 'ROOTFS_BAD_LINK', s2.dest);
  assert.is(fs.statSync(s2.outsideFile).nlink, 1, 'no link to the outside file was made');
  const s3 = sentinel();
  await expectFails([[{ name: 'out', type: '2', linkname: s3.dir }, { name: 'h', type: '1', linkname: 'out/outside-file' }]], 'ROOTFS_BAD_LINK', s3.dest);
  assert.is(fs.statSync(s3.outsideFile).nlink, 1);
  const s4 = sentinel();
  const r = await materialize(
    [
      [
        { name: 's', type: '2', linkname: s4.outsideFile },
        { name: 'h', type: '1', linkname: 's' },
        // Writing the hard-linked name replaces the link, never the file the symlink names.
        { name: 'h', content: 'pwned' },
        { name: 'h2', type: '1', linkname: 's' },
      ],
    ],
    { dest: s4.dest },
  );
  assert.is(outsideState(s4.dir), s4.before);
  assert.is(fs.readFileSync(s4.outsideFile, 'utf8'), 'precious');
  assert.match(line(r.tree, '/h'), /^\/h f 0644 0:0 size=5/);
  assert.match(line(r.tree, '/h2'), new RegExp(`^/h2 l .*-> ${s4.outsideFile} link=/h2`), 'a hard link to a symlink is the symlink itself');
  assert.is(fs.statSync(s4.outsideFile).nlink, 1);
});

test('escape: whiteouts and opaque markers under a symlink remove only inside the rootfs', async () => {
  const s = sentinel();
  await materialize(
    [
      [{ name: 'x', type: '2', linkname: s.dir }, { name: 'y', type: '2', linkname: '../..' }],
      [
        { name: 'x/.wh.outside-file' },
        { name: 'x/outside/.wh..wh..opq' },
        { name: 'y/.wh.outside' },
        { name: 'y/outside/.wh..wh..opq' },
        { name: `${s.dir.slice(1)}/.wh.outside-file` },
      ],
    ],
    { dest: s.dest },
  );
  assert.is(outsideState(s.dir), s.before);
  assert.is(fs.readFileSync(s.outsideFile, 'utf8'), 'precious');
  const s2 = sentinel();
  await expectFails([[{ name: '../.wh.outside-file' }]], 'ROOTFS_UNSAFE_ENTRY', s2.dest);
  await expectFails([[{ name: '.wh..' }]], 'ROOTFS_UNSAFE_ENTRY', join(s2.dir, 'rootfs3'));
  assert.is(outsideState(s2.dir).split('\n').filter((l) => !l.startsWith('/rootfs3')).join('\n'), s2.before);
});

test('a symlink loop in a parent is a SYMLINK_LOOP error', async () => {
  const s = sentinel();
  await expectFails([[{ name: 'a', type: '2', linkname: 'b' }, { name: 'b', type: '2', linkname: 'a' }, { name: 'a/x', content: 'x' }]], 'SYMLINK_LOOP', s.dest);
  assert.is(outsideState(s.dir), s.before);
});

// --- keys and snapshots ------------------------------------------------------

test('chainId follows the OCI spec (checked with sha256sum)', () => {
  const a = `sha256:${'a'.repeat(64)}` as Digest;
  const b = `sha256:${'b'.repeat(64)}` as Digest;
  const c = `sha256:${'c'.repeat(64)}` as Digest;
  const sum = (s: string): Digest => `sha256:${spawnSync('sha256sum', { input: s, encoding: 'utf8' }).stdout.split(' ')[0]}` as Digest;
  assert.is(chainId([a]), a);
  const ab = sum(`${a} ${b}`);
  assert.is(chainId([a, b]), ab);
  assert.is(chainId([a, b, c]), sum(`${ab} ${c}`));
  assert.equal(chainIds([a, b]), [a, ab]);
  assert.throws(() => chainId([]), (e: OcistackError) => e.code === 'ROOTFS_EMPTY_CHAIN');
});

test('snapshot: made once under <cache>/snapshots/<chainid>, reused by the next caller without reading the layers', async () => {
  const store = newStore();
  const chain = await putLayers(store, [[{ name: 'a', content: 'a' }], [{ name: '.wh.a' }, { name: 'b', content: 'b' }]]);
  const cacheDir = makeTempDir('rootfs-cache');
  const first = await ensureSnapshot({ store, ...chain, cacheDir });
  assert.is(first.reused, false);
  assert.is(first.dir, join(snapshotsRoot(cacheDir), chainId(chain.diffIds).slice(7)));
  assert.equal(fs.readdirSync(first.rootfs), ['b']);
  // The blobs are gone: only reuse can succeed.
  for (const l of chain.layers) fs.rmSync(store.path(l.digest));
  const second = await ensureSnapshot({ store, ...chain, cacheDir });
  assert.is(second.reused, true);
  assert.is(second.rootfs, first.rootfs);
  assert.equal(fs.readdirSync(join(snapshotsRoot(cacheDir), 'tmp')), [], 'no temp dir left');
});

test('snapshot: two callers at once both succeed with one snapshot', async () => {
  const store = newStore();
  const chain = await putLayers(store, [[{ name: 'a', content: 'a' }]]);
  const cacheDir = makeTempDir('rootfs-cache');
  const [x, y] = await Promise.all([ensureSnapshot({ store, ...chain, cacheDir }), ensureSnapshot({ store, ...chain, cacheDir })]);
  assert.is(x!.rootfs, y!.rootfs);
  assert.equal([x!.reused, y!.reused].sort(), [false, true], 'one made it, the other used it');
  assert.equal(fs.readdirSync(x!.rootfs), ['a']);
  assert.equal(fs.readdirSync(join(snapshotsRoot(cacheDir), 'tmp')), [], 'the loser removed its copy');
});

test('snapshot: a wrong diff_id, a hostile layer or an abort leave no snapshot and no temp dir', async () => {
  const store = newStore();
  const chain = await putLayers(store, [[{ name: 'a', content: 'a' }], [{ name: 'b/../../x', content: 'x' }]]);
  const cacheDir = makeTempDir('rootfs-cache');
  const tmp = join(snapshotsRoot(cacheDir), 'tmp');
  const wrong = [chain.diffIds[1]!, chain.diffIds[1]!];
  for (const [diffIds, code, signal] of [
    [wrong, 'ROOTFS_DIFF_ID_MISMATCH', undefined],
    [chain.diffIds, 'ROOTFS_UNSAFE_ENTRY', undefined],
    [chain.diffIds, 'ABORTED', AbortSignal.abort()],
  ] as const) {
    try {
      await ensureSnapshot({ store, layers: chain.layers, diffIds, cacheDir, signal });
      assert.unreachable(code);
    } catch (e) {
      assert.is((e as OcistackError).code, code, String(e));
    }
    assert.equal(fs.readdirSync(snapshotsRoot(cacheDir)).filter((n) => n !== 'tmp'), [], `${code}: no snapshot`);
    assert.equal(fs.readdirSync(tmp), [], `${code}: no temp dir`);
  }
});

test('abort during a layer: no entry after the abort is applied, the error is ABORTED', async () => {
  const store = newStore();
  // The device entry makes an unprivileged run emit a warning mid-layer: the listener aborts there.
  const chain = await putLayers(store, [[{ name: 'a', content: 'a' }, { name: 'null', type: '3', devmajor: 1, devminor: 3 }, { name: 'b', content: 'b' }], [{ name: 'c', content: 'c' }]]);
  const dest = join(makeTempDir('rootfs-abort'), 'rootfs');
  const ac = new AbortController();
  try {
    await materializeChain({ store, ...chain, dest, privileged: false, signal: ac.signal, onProgress: () => ac.abort() });
    assert.unreachable('must be aborted');
  } catch (e) {
    assert.is((e as OcistackError).code, 'ABORTED', String(e));
  }
  assert.equal(fs.readdirSync(dest), ['a']);
});

test('snapshot: an unprivileged snapshot has its own key', async () => {
  const store = newStore();
  const chain = await putLayers(store, [[{ name: 'f', content: 'f', uid: 1000, gid: 1000 }]]);
  const cacheDir = makeTempDir('rootfs-cache');
  const u = await ensureSnapshot({ store, ...chain, cacheDir, privileged: false });
  assert.ok(u.dir.endsWith('.unprivileged'));
  if (isRoot) {
    const p = await ensureSnapshot({ store, ...chain, cacheDir });
    assert.is(p.reused, false, 'a privileged caller does not reuse an unprivileged snapshot');
    assert.is(fs.statSync(join(p.rootfs, 'f')).uid, 1000);
  }
});

test('materialize refuses a non-empty destination', async () => {
  const dest = makeTempDir('rootfs-busy');
  fs.writeFileSync(join(dest, 'x'), 'x');
  try {
    await materializeChain({ store: newStore(), layers: [], dest });
    assert.unreachable();
  } catch (e) {
    assert.is((e as OcistackError).code, 'ROOTFS_DEST_NOT_EMPTY');
  }
});

test.run();
