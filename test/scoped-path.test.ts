/**
 * Root-scoped symlink resolution, one algorithm behind both the build
 * context (real files, async) and image file systems (layer indexes, sync):
 * links resolve inside the root, `..` and absolute targets never leave it,
 * and loops are an error instead of a hang.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveInRootSync } from '../lib/scoped-path.js';
import { FsContextSource, resolveScoped } from '../lib/context/index.js';
import { BlobStore } from '../lib/image/store.js';
import { writeLayer } from '../lib/layer/write.js';
import { openImageFs } from '../lib/layer/image-fs.js';
import { OcistackError } from '../lib/errors.js';
import type { LayerEntry } from '../lib/layer/types.js';

const links: Record<string, string> = { 'etc/alias': '/etc/real', up: '../../..', 'a/rel': '../etc', self: 'self', ping: 'pong', pong: 'ping' };
const lookup = (rel: string): string | undefined => links[rel];

test('links resolve inside the root; .. and absolute targets cannot climb out', () => {
  assert.is(resolveInRootSync('/etc/alias/x.conf', true, lookup), 'etc/real/x.conf');
  assert.is(resolveInRootSync('/etc/alias', false, lookup), 'etc/alias', 'the last component is kept with followFinal=false');
  assert.is(resolveInRootSync('/up/etc/passwd', true, lookup), 'etc/passwd', '../../.. from the root stays at the root');
  assert.is(resolveInRootSync('/../../x', true, lookup), 'x');
  assert.is(resolveInRootSync('/a/rel/alias/y', true, lookup), 'etc/real/y', 'relative link, then an absolute one');
  assert.is(resolveInRootSync('/missing/dir', true, lookup), 'missing/dir');
});

test('a symlink loop is a SYMLINK_LOOP error naming the path', () => {
  for (const p of ['/self/x', '/ping']) {
    try {
      resolveInRootSync(p, true, lookup);
      assert.unreachable(`${p} must fail`);
    } catch (e) {
      assert.instance(e, OcistackError);
      assert.is((e as OcistackError).code, 'SYMLINK_LOOP');
      assert.ok((e as Error).message.includes(p));
    }
  }
});

test('build context (real files): a link out of the context lands inside it; a loop fails', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocistack-scoped-'));
  mkdirSync(join(dir, 'real'));
  writeFileSync(join(dir, 'real', 'f'), 'x');
  symlinkSync('/etc', join(dir, 'out'));
  symlinkSync('real', join(dir, 'in'));
  symlinkSync('loop', join(dir, 'loop'));
  const src = new FsContextSource(dir);
  const fs = { lstat: (r: string) => src.lstat(r), readlink: (r: string) => src.readlink(r) };
  assert.is(await resolveScoped(fs, 'in/f', true), 'real/f');
  assert.is(await resolveScoped(fs, 'out/passwd', true), 'etc/passwd', '/etc is the context root\'s etc, not the host\'s');
  try {
    await resolveScoped(fs, 'loop/x', true);
    assert.unreachable('loop must fail');
  } catch (e) {
    assert.is((e as OcistackError).code, 'SYMLINK_LOOP');
  }
});

test('image file system (from a real layer): links resolve in the image; a loop fails', async () => {
  const store = new BlobStore(mkdtempSync(join(tmpdir(), 'ocistack-scoped-store-')));
  const base = { mode: 0o777, uid: 0, gid: 0, mtime: 1 };
  const entries: LayerEntry[] = [
    { path: '/usr', type: 'dir', ...base, mode: 0o755 },
    { path: '/usr/bin', type: 'dir', ...base, mode: 0o755 },
    { path: '/bin', type: 'symlink', ...base, linkTarget: 'usr/bin' },
    { path: '/x', type: 'symlink', ...base, linkTarget: '/y' },
    { path: '/y', type: 'symlink', ...base, linkTarget: '/x' },
  ];
  const layer = await writeLayer(entries, { store });
  const fs = await openImageFs(store, [layer.digest]);
  assert.is(fs.resolve('/bin/sh'), '/usr/bin/sh');
  assert.is(fs.stat('/bin')?.type, 'dir');
  assert.is(fs.lstat('/bin')?.type, 'symlink');
  // A link asked for itself first (lstat), then followed: absolute and relative targets below the root.
  const deeper = await writeLayer([
    { path: '/etc', type: 'dir', ...base, mode: 0o755 },
    { path: '/etc/real-dir', type: 'dir', ...base, mode: 0o755 },
    { path: '/etc/dir-alias', type: 'symlink', ...base, linkTarget: '/etc/real-dir' },
    { path: '/etc/rel-alias', type: 'symlink', ...base, linkTarget: 'real-dir' },
  ], { store });
  const fs2 = await openImageFs(store, [deeper.digest]);
  for (const alias of ['/etc/dir-alias', '/etc/rel-alias']) {
    assert.is(fs2.lstat(alias)?.type, 'symlink');
    assert.is(fs2.resolve(alias, false), alias);
    assert.is(fs2.stat(alias)?.type, 'dir', `${alias} followed after an lstat`);
    assert.is(fs2.resolve(alias, true), '/etc/real-dir');
    assert.is(fs2.resolve(`${alias}/new.conf`, false), '/etc/real-dir/new.conf');
  }
  try {
    fs.resolve('/x/z');
    assert.unreachable('loop must fail');
  } catch (e) {
    assert.is((e as OcistackError).code, 'SYMLINK_LOOP');
    assert.match((e as Error).message, /in the image/);
  }
});

test.run();
