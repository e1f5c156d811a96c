/**
 * writeLayer and the image file-system view, checked with GNU tar, gzip and
 * sha256sum (not with our own reader): digests, tar format, gzip header,
 * determinism, SOURCE_DATE_EPOCH clamping, whiteouts and hard links.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import type { LayerEntry } from '../lib/layer/types.js';
import { writeLayer, openImageFs, indexLayer, layerIndexPath } from '../lib/layer/index.js';
import { parsePaxRecords } from '../lib/layer/pax.js';
import { requireTool } from './helpers/tools.js';
import { excludeFromLayerAudit } from './layer-audit-keep.js';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ocistack-layer-test-'));
let n = 0;
function freshStore(): BlobStore {
  return new BlobStore(path.join(tmpRoot, `store-${n++}`));
}

function sh(cmd: string): string {
  return execFileSync('bash', ['-c', cmd], { encoding: 'utf8' });
}

function bytes(s: string): () => AsyncIterable<Uint8Array> {
  return () => (async function* () { yield Buffer.from(s); })();
}

function sampleEntries(): LayerEntry[] {
  // Deliberately out of order: the writer sorts.
  return [
    { path: '/app/b.txt', type: 'file', mode: 0o600, uid: 1000, gid: 1001, mtime: 1700000000, size: 5, content: bytes('bbbbb') },
    { path: '/app', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1700000000 },
    { path: '/app/a.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: 6, content: bytes('hello\n') },
    { path: '/app/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1700000000, linkTarget: 'a.txt' },
    { path: '/app/hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, linkTarget: '/app/a.txt' },
    { path: '/etc/gone', type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0 },
    { path: '/etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1700000000 },
    { path: '/var/cache', type: 'opaque', mode: 0, uid: 0, gid: 0, mtime: 0 },
    { path: '/app-x', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: 0 },
  ];
}

test('writeLayer: digest is sha256 of the blob, diffId sha256 of the tar', async () => {
  const store = freshStore();
  const r = await writeLayer(sampleEntries(), { store });
  const blob = store.path(r.digest);
  assert.is('sha256:' + sh(`sha256sum ${blob} | cut -d' ' -f1`).trim(), r.digest);
  assert.is('sha256:' + sh(`gzip -dc ${blob} | sha256sum | cut -d' ' -f1`).trim(), r.diffId);
  assert.is(fs.statSync(blob).size, r.size);
  assert.is(r.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.equal(fs.readdirSync(path.join(store.root, 'tmp')), [], 'no temp files left');
});

test('writeLayer: sorted entries, numeric owners, empty uname/gname, dirs with trailing slash, whiteouts', async () => {
  const store = freshStore();
  const r = await writeLayer(sampleEntries(), { store });
  const names = sh(`tar -tzf ${store.path(r.digest)}`).trim().split('\n');
  assert.equal(names, ['app/', 'app/a.txt', 'app/b.txt', 'app/hard', 'app/link', 'app-x', 'etc/', 'etc/.wh.gone', 'var/cache/.wh..wh..opq']);
  const verbose = sh(`tar --numeric-owner -tvzf ${store.path(r.digest)}`);
  assert.match(verbose, /-rw------- 1000\/1001\s+5 2023-11-14 22:13 app\/b\.txt/);
  assert.match(verbose, /hrw-r--r-- 0\/0\s+0 .* app\/hard link to app\/a\.txt/);
  assert.match(verbose, /lrwxrwxrwx 0\/0\s+0 .* app\/link -> a\.txt/);
  // uname/gname fields (offsets 265 and 297) are empty in every header.
  const tar = execFileSync('gzip', ['-dc', store.path(r.digest)]);
  for (let off = 0; off + 512 <= tar.length; off += 512) {
    const block = tar.subarray(off, off + 512);
    if (block.toString('latin1', 257, 262) !== 'ustar') continue;
    assert.is(block[265], 0);
    assert.is(block[297], 0);
  }
  const x = path.join(tmpRoot, 'x-' + n++);
  fs.mkdirSync(x);
  sh(`tar -xzf ${store.path(r.digest)} -C ${x} app`);
  assert.is(fs.readFileSync(path.join(x, 'app/hard'), 'utf8'), 'hello\n');
  assert.is(fs.statSync(path.join(x, 'app/a.txt')).ino, fs.statSync(path.join(x, 'app/hard')).ino);
});

test('writeLayer: gzip header has no mtime and OS byte 255', async () => {
  const store = freshStore();
  const r = await writeLayer(sampleEntries(), { store });
  const head = fs.readFileSync(store.path(r.digest)).subarray(0, 10);
  assert.equal([...head.subarray(0, 4)], [0x1f, 0x8b, 8, 0], 'magic, deflate, no flags (no name)');
  assert.equal([...head.subarray(4, 8)], [0, 0, 0, 0]);
  assert.is(head[9], 255);
});

test('writeLayer: same entries in any order give the same digest, in two stores', async () => {
  const a = await writeLayer(sampleEntries(), { store: freshStore() });
  const b = await writeLayer(sampleEntries().reverse(), { store: freshStore() });
  assert.is(a.digest, b.digest);
  assert.is(a.diffId, b.diffId);
});

test('writeLayer: SOURCE_DATE_EPOCH clamps later mtimes and keeps earlier ones', async () => {
  const store = freshStore();
  const entries: LayerEntry[] = [
    { path: '/new', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 2000000000, size: 1, content: bytes('n') },
    { path: '/old', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1000000000, size: 1, content: bytes('o') },
  ];
  const r = await writeLayer(entries, { store, sourceDateEpoch: 1500000000 });
  const out = sh(`TZ=UTC tar --full-time -tvzf ${store.path(r.digest)}`);
  assert.match(out, /2017-07-14 02:40:00 new/);
  assert.match(out, /2001-09-09 01:46:40 old/);
});

test('writeLayer: long and non-ASCII names and big ids go through PAX and read back with GNU tar', async () => {
  const store = freshStore();
  const long = '/' + 'd'.repeat(120) + '/' + 'f'.repeat(120);
  const entries: LayerEntry[] = [
    { path: long, type: 'file', mode: 0o644, uid: 3000000, gid: 3000000, mtime: 1700000000, size: 2, content: bytes('ok') },
    { path: '/héllo', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1700000000, linkTarget: '/' + 'l'.repeat(150) },
  ];
  const r = await writeLayer(entries, { store });
  const out = sh(`tar --numeric-owner -tvzf ${store.path(r.digest)}`);
  assert.ok(out.includes(long.slice(1)), out);
  assert.match(out, /3000000\/3000000/);
  assert.ok(out.includes('héllo -> /' + 'l'.repeat(150)));
});

test('writeLayer: content shorter than size fails and leaves no blob or temp file', async () => {
  const store = freshStore();
  const entries: LayerEntry[] = [{ path: '/f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 10, content: bytes('short') }];
  try {
    await writeLayer(entries, { store });
    assert.unreachable('should fail');
  } catch (e) {
    assert.match((e as Error).message, /changed while/);
  }
  assert.equal(fs.readdirSync(path.join(store.root, 'tmp')), []);
  assert.not.ok(fs.existsSync(path.join(store.root, 'blobs')));
});

test('openImageFs: merges layers with whiteouts, opaque dirs, symlinks and reads files', async () => {
  const store = freshStore();
  excludeFromLayerAudit(store.root); // its second layer hard-links a file of the first: it extracts only on top of it
  const l1 = await writeLayer(
    [
      { path: '/etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1 },
      { path: '/etc/passwd', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 5, content: bytes('root\n') },
      { path: '/etc/gone', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1, content: bytes('x') },
      { path: '/usr/local/sbin', type: 'dir', mode: 0o700, uid: 0, gid: 0, mtime: 1 },
      { path: '/usr/local/bin', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1, linkTarget: '../../bin' },
      { path: '/bin', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1 },
      { path: '/bin/sh', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime: 1, size: 2, content: bytes('sh') },
      { path: '/var/cache/old', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1, content: bytes('o') },
      { path: '/abs', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1, linkTarget: '/etc/../../../etc/passwd' },
    ],
    { store },
  );
  const l2 = await writeLayer(
    [
      { path: '/etc/gone', type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0 },
      { path: '/var/cache', type: 'opaque', mode: 0, uid: 0, gid: 0, mtime: 0 },
      { path: '/var/cache', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 2 },
      { path: '/var/cache/new', type: 'file', mode: 0o600, uid: 5, gid: 6, mtime: 2, size: 3, content: bytes('new') },
      { path: '/bin/sh2', type: 'hardlink', mode: 0o755, uid: 0, gid: 0, mtime: 1, linkTarget: '/bin/sh' },
    ],
    { store },
  );
  const ifs = await openImageFs(store, [l1.digest, l2.digest]);
  assert.is(ifs.stat('/etc/gone'), undefined);
  assert.ok(ifs.stat('/etc/passwd'));
  assert.equal(ifs.readdir('/var/cache'), ['new']);
  assert.is(ifs.resolve('/usr/local/bin/sh'), '/bin/sh');
  assert.is(ifs.lstat('/usr/local/bin')!.type, 'symlink');
  assert.is(ifs.stat('/usr/local/bin')!.type, 'dir');
  assert.is(ifs.resolve('/abs'), '/etc/passwd', 'absolute and .. targets stay inside the root');
  assert.is((await ifs.readFile('/abs')).toString(), 'root\n');
  assert.is((await ifs.readFile('/var/cache/new')).toString(), 'new');
  assert.is(ifs.stat('/var/cache/new')!.uid, 5);
  // A hard link to a file of a lower layer reads that file's bytes.
  assert.is(ifs.stat('/bin/sh2')!.type, 'file');
  assert.is((await ifs.readFile('/bin/sh2')).toString(), 'sh');
  assert.ok(fs.existsSync(layerIndexPath(store, l1.digest)), 'index cached beside the blobs');
  const again = await indexLayer(store, l1.digest);
  assert.is(again.entries.length, 9);
  assert.ok(again.entries.some((e) => e.path === '/usr/local/bin' && e.type === 'symlink' && e.linkTarget === '../../bin'));
});

test('openImageFs: the cached index is used (a corrupt blob is not read again)', async () => {
  const store = freshStore();
  const l = await writeLayer([{ path: '/f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1, content: bytes('f') }], { store });
  await indexLayer(store, l.digest);
  fs.writeFileSync(store.path(l.digest), 'garbage');
  const ifs = await openImageFs(store, [l.digest]);
  assert.is(ifs.stat('/f')!.size, 1);
});

test('indexLayer: a truncated layer is an error, not a partial index', async () => {
  const store = freshStore();
  excludeFromLayerAudit(store.root); // holds a truncated layer on purpose
  const big = 'z'.repeat(200000);
  const l = await writeLayer([{ path: '/big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: big.length, content: bytes(big) }], { store });
  // Re-store the layer's tar cut in the middle of the file, gzip-compressed, under its own digest.
  const tar = execFileSync('gzip', ['-dc', store.path(l.digest)]).subarray(0, 100000);
  const cut = await store.putBytes(execFileSync('gzip', ['-c'], { input: tar }));
  try {
    await indexLayer(store, cut.digest);
    assert.unreachable('should fail');
  } catch (e) {
    assert.match((e as Error).message, /cannot read layer/);
  }
  assert.not.ok(fs.existsSync(layerIndexPath(store, cut.digest)), 'no index cached');
});

/** `setcap cap_net_bind_service=+ep` as the kernel stores it (VFS_CAP_REVISION_2): 20 bytes, hex. */
const CAP_HEX = '0100000200040000000000000000000000000000';

/** `name -> value hex` of GNU tar's view of a layer file's xattrs, by extracting it as root and reading them back. */
function gnuTarCapability(blob: string, member: string): string {
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'x-'));
  sh(`tar --xattrs --xattrs-include='*' -xzf ${blob} -C ${dir} ${member}`);
  // getcap (libcap2-bin) decodes the stored struct: an independent reader of the bytes.
  return sh(`${requireTool('getcap')} ${path.join(dir, member)}`).trim().replace(dir + '/', '');
}

test('writeLayer: xattr values are raw bytes (latin1 strings), GNU tar + getcap read the capability back', async () => {
  const store = freshStore();
  const cap = Buffer.from(CAP_HEX, 'hex').toString('latin1');
  const r = await writeLayer([
    { path: '/ping', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime: 1700000000, size: 2, content: bytes('ok'), xattrs: { 'security.capability': cap, 'user.hi': '\u00ff\u0080=\n' } },
  ], { store });
  assert.is(gnuTarCapability(store.path(r.digest), 'ping'), 'ping cap_net_bind_service=ep');
  const list = sh(`tar --xattrs --xattrs-include='*' -tvvzf ${store.path(r.digest)}`);
  assert.match(list, /x: 20 security\.capability/);
  assert.match(list, /x: 4 user\.hi/, 'byte length, not UTF-8 length');
  const bad = [{ path: '/t', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0, content: bytes(''), xattrs: { 'user.t': 'é€' } }];
  await writeLayer(bad, { store }).then(() => assert.unreachable('a non-byte string is refused'), (e: Error) => assert.match(e.message, /byte string/));
});

test('parsePaxRecords: lengths count bytes, values are raw (newline, =, NUL, bytes >= 0x80)', () => {
  const value = Buffer.from([0x01, 0x0a, 0x3d, 0x00, 0xff, 0x80]);
  const rec = (k: string, v: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(` ${k}=`), v, Buffer.from('\n')]);
    let len = body.length + String(body.length).length;
    if (String(len).length + body.length !== len) len = body.length + String(len).length;
    return Buffer.concat([Buffer.from(String(len)), body]);
  };
  const body = Buffer.concat([rec('path', Buffer.from('héllo')), rec('SCHILY.xattr.security.capability', value), rec('SCHILY.xattr.user.long', Buffer.alloc(95, 0x61))]);
  const m = parsePaxRecords(Buffer.concat([body, Buffer.alloc(7)]));
  assert.equal([...m.keys()], ['path', 'SCHILY.xattr.security.capability', 'SCHILY.xattr.user.long']);
  assert.is(m.get('path')!.toString('utf8'), 'héllo');
  assert.ok(m.get('SCHILY.xattr.security.capability')!.equals(value));
  assert.is(m.get('SCHILY.xattr.user.long')!.length, 95);
  // A record whose length is wrong ends parsing; what came before stays.
  const broken = parsePaxRecords(Buffer.concat([rec('path', Buffer.from('a')), Buffer.from('99 path=b\n')]));
  assert.equal([...broken.keys()], ['path']);
  assert.is(broken.get('path')!.toString(), 'a');
});

test('indexLayer/openImageFs: xattrs of a GNU tar layer (setcap, global PAX header) survive the scan byte for byte', async () => {
  const store = freshStore();
  const src = fs.mkdtempSync(path.join(tmpRoot, 'caps-'));
  fs.mkdirSync(path.join(src, 'bin'));
  fs.writeFileSync(path.join(src, 'bin', 'x'), 'x'.repeat(1000));
  sh(`${requireTool('setcap')} cap_net_bind_service=+ep ${src}/bin/x`);
  fs.linkSync(path.join(src, 'bin', 'x'), path.join(src, 'bin', 'y'));
  fs.writeFileSync(path.join(src, 'plain'), 'p');
  // A big file first and a long PAX name later: the xattr reader must stay in step with the tar blocks.
  fs.writeFileSync(path.join(src, 'big'), Buffer.alloc(300_001, 7));
  const longName = 'n'.repeat(150);
  fs.writeFileSync(path.join(src, longName), 'l');
  sh(`${requireTool('setcap')} cap_net_bind_service=+ep ${path.join(src, longName)}`);
  const tgz = path.join(tmpRoot, `caps-${n++}.tar.gz`);
  sh(`tar --xattrs --xattrs-include='*' --format=pax --pax-option='SCHILY.xattr.user.g:=global' -czf ${tgz} -C ${src} big bin plain ${longName}`);
  const blob = await store.putBytes(fs.readFileSync(tgz));
  const idx = await indexLayer(store, blob.digest);
  const x = idx.entries.find((e) => e.path === '/bin/x')!;
  assert.is(Buffer.from(x.xattrs!['security.capability']!, 'latin1').toString('hex'), CAP_HEX);
  assert.is(x.xattrs!['user.g'], 'global', 'a global header applies to every later entry');
  assert.is(idx.entries.find((e) => e.path === '/plain')!.xattrs!['security.capability'], undefined);
  assert.equal(idx.entries.find((e) => e.path === '/big')!.xattrs, { 'user.g': 'global' });
  assert.is(Buffer.from(idx.entries.find((e) => e.path === '/' + longName)!.xattrs!['security.capability']!, 'latin1').toString('hex'), CAP_HEX);
  // Cached index (version 2) keeps them; the image view shares them with the hard link.
  const cached = JSON.parse(fs.readFileSync(layerIndexPath(store, blob.digest), 'utf8'));
  assert.is(cached.version, 2);
  const ifs = await openImageFs(store, [blob.digest]);
  assert.is(Buffer.from(ifs.stat('/bin/y')!.xattrs!['security.capability']!, 'latin1').toString('hex'), CAP_HEX);
  assert.is((await ifs.readFile('/bin/y')).length, 1000);
});

test('indexLayer: a cached index of version 1 (scanned without xattrs) is rebuilt, not read', async () => {
  const store = freshStore();
  const cap = Buffer.from(CAP_HEX, 'hex').toString('latin1');
  const r = await writeLayer([{ path: '/c', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime: 1, size: 1, content: bytes('c'), xattrs: { 'security.capability': cap } }], { store });
  const file = layerIndexPath(store, r.digest);
  const old = JSON.parse(fs.readFileSync(file, 'utf8'));
  old.version = 1;
  delete old.entries[0].xattrs;
  fs.writeFileSync(file, JSON.stringify(old));
  const idx = await indexLayer(store, r.digest);
  assert.is(idx.version, 2);
  assert.is(idx.entries[0]!.xattrs!['security.capability'], cap);
});

test.after(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

test.run();
