/**
 * lib/rootfs/capture.ts on a real overlay mount (as root): changes made
 * through the merged dir, then the upper dir captured. Checks what the
 * executor test cannot do with busybox: xattrs (security.capability set
 * with setcap, user.*), FIFOs, the hiding of overlay's own xattrs, deletion
 * of a directory, excludes, and the writer taking the result (GNU tar
 * lists it).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import { indexLayer } from '../lib/layer/index.js';
import { writeLayer } from '../lib/layer/write.js';
import { mountOverlay, unmountOverlay } from '../lib/executor/runc/overlay.js';
import { captureOverlayUpper } from '../lib/rootfs/capture.js';
import type { LayerEntry } from '../lib/layer/types.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';

async function withOverlay(prepareLower: (lower: string) => void, change: (merged: string) => Promise<void> | void, userxattr = false): Promise<string> {
  const dir = makeTempDir('capture');
  const d = { lower: join(dir, 'lower'), upper: join(dir, 'upper'), work: join(dir, 'work'), merged: join(dir, 'merged') };
  for (const p of Object.values(d)) fs.mkdirSync(p);
  prepareLower(d.lower);
  await mountOverlay({ lower: [d.lower], upper: d.upper, work: d.work, merged: d.merged, userxattr });
  try {
    await change(d.merged);
  } finally {
    await unmountOverlay(d.merged);
  }
  return d.upper;
}

const byPath = (es: LayerEntry[]) => new Map(es.map((e) => [`${e.type === 'whiteout' || e.type === 'opaque' ? e.type + ':' : ''}${e.path}`, e]));

test('xattrs: security.capability and user.* kept, overlay bookkeeping dropped', async () => {
  const upper = await withOverlay(
    (l) => {
      fs.mkdirSync(join(l, 'usr'));
      fs.writeFileSync(join(l, 'usr', 'ping'), 'ping');
    },
    async (m) => {
      fs.chmodSync(join(m, 'usr', 'ping'), 0o755); // copy-up: overlay marks it (trusted.overlay.origin / impure)
      await runOk(requireTool('setcap'), ['cap_net_raw+ep', join(m, 'usr', 'ping')]);
      await runOk(requireTool('setfattr'), ['-n', 'user.note', '-v', 'hi', join(m, 'usr', 'ping')]);
    },
  );
  const { entries, notes } = await captureOverlayUpper({ upper });
  assert.equal(notes, []);
  const e = byPath(entries);
  const ping = e.get('/usr/ping')!;
  assert.equal(Object.keys(ping.xattrs ?? {}).sort(), ['security.capability', 'user.note']);
  assert.is(ping.xattrs!['user.note'], 'hi');
  assert.is(ping.xattrs!['security.capability']!.charCodeAt(0) !== undefined, true);
  for (const x of entries) for (const k of Object.keys(x.xattrs ?? {})) assert.not.ok(k.startsWith('trusted.overlay.'), `${x.path} ${k}`);
  // The layer keeps the capability: GNU tar restores it where getcap reads it back.
  const store = new BlobStore(makeTempDir('capture-store'));
  const layer = await writeLayer(entries, { store });
  const idx = await indexLayer(store, layer.digest);
  assert.ok(idx.entries.find((x) => x.path === '/usr/ping')!.xattrs?.['security.capability']);
  const out = makeTempDir('capture-out');
  await runOk('tar', ['--xattrs', '--xattrs-include=*', '-xzf', store.path(layer.digest), '-C', out]);
  assert.match(await runOk(requireTool('getcap'), [join(out, 'usr', 'ping')]), /cap_net_raw[=+]ep/);
});

test('deleted directory, FIFO, replaced directory, excludes', async () => {
  const upper = await withOverlay(
    (l) => {
      fs.mkdirSync(join(l, 'gone', 'deep'), { recursive: true });
      fs.writeFileSync(join(l, 'gone', 'deep', 'f'), 'x');
      fs.mkdirSync(join(l, 'repl'));
      fs.writeFileSync(join(l, 'repl', 'old'), 'x');
    },
    async (m) => {
      fs.rmSync(join(m, 'gone'), { recursive: true });
      fs.rmSync(join(m, 'repl'), { recursive: true });
      fs.mkdirSync(join(m, 'repl'));
      fs.writeFileSync(join(m, 'repl', 'new'), 'y');
      await runOk('mkfifo', [join(m, 'pipe')]);
      fs.mkdirSync(join(m, 'proc'));
      fs.writeFileSync(join(m, 'proc', 'junk'), 'j');
    },
  );
  const { entries } = await captureOverlayUpper({ upper, exclude: ['/proc'] });
  assert.equal([...byPath(entries).keys()].sort(), ['/pipe', '/repl', '/repl/new', 'opaque:/repl', 'whiteout:/gone']);
  assert.is(byPath(entries).get('/pipe')!.type, 'fifo');
});

test('userxattr (how rootless mounts it): user.overlay.opaque is seen, user.overlay.* never kept', async () => {
  const upper = await withOverlay(
    (l) => {
      fs.mkdirSync(join(l, 'repl'));
      fs.writeFileSync(join(l, 'repl', 'old'), 'x');
      fs.writeFileSync(join(l, 'f'), 'x');
    },
    (m) => {
      fs.rmSync(join(m, 'repl'), { recursive: true });
      fs.mkdirSync(join(m, 'repl'));
      fs.chmodSync(join(m, 'f'), 0o600);
    },
    true,
  );
  const xattrNames: string[] = (await runOk(requireTool('getfattr'), ['-R', '-d', '-m', '-', '--absolute-names', upper])).match(/^[a-z]+\.[^=]+/gm) ?? [];
  assert.ok(xattrNames.includes('user.overlay.opaque'), `upper dir xattrs: ${xattrNames.join(', ')}`);
  const { entries } = await captureOverlayUpper({ upper });
  assert.equal([...byPath(entries).keys()].sort(), ['/f', '/repl', 'opaque:/repl']);
  for (const x of entries) for (const k of Object.keys(x.xattrs ?? {})) assert.not.ok(k.includes('.overlay.'), `${x.path} ${k}`);
});

test('an empty upper dir: no entries (the executor then reports no layer)', async () => {
  const upper = await withOverlay(
    (l) => fs.writeFileSync(join(l, 'f'), 'x'),
    (m) => void fs.readFileSync(join(m, 'f')),
  );
  assert.equal((await captureOverlayUpper({ upper })).entries, []);
});

test.run();
