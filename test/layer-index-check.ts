/**
 * Self-check of the layer index the writer saves for the layer it just wrote
 * (lib/layer/write.ts -> saveLayerIndex): it must equal what scanning the
 * blob (lib/layer/layer-index.ts, node-tar) gives, for every kind of entry
 * the writer emits. Run by the build benchmark before measuring, and alone:
 *
 *   node dist/bench/build-index-check.js
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { BlobStore } from '../lib/image/store.js';
import { indexLayer, layerIndexPath } from '../lib/layer/layer-index.js';
import type { LayerEntry } from '../lib/layer/types.js';
import { writeLayer } from '../lib/layer/write.js';

/** `setcap cap_net_bind_service=+ep` as stored (VFS_CAP_REVISION_2, permitted bit 10): 20 bytes. */
export const CAP_NET_BIND_SERVICE = Buffer.from('0100000200040000000000000000000000000000', 'hex').toString('latin1');

function file(path: string, data: string | Buffer, extra: Partial<LayerEntry> = {}): LayerEntry {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size: buf.length, content: async function* () { yield buf; }, ...extra };
}

/** Layers covering what the writer can emit: plain, PAX names and ids, links, whiteouts, xattrs, clamped times. */
function cases(): [string, LayerEntry[], number | undefined][] {
  const long = '/' + Array.from({ length: 12 }, (_, i) => `directory-number-${i}`).join('/');
  return [
    ['plain tree', [
      { path: '/app', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000 },
      file('/app/a.txt', 'hello\n'),
      file('/app/bin/run', '#!/bin/sh\n', { mode: 0o4755, uid: 1000, gid: 1000 }),
      { path: '/app/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1_600_000_000, linkTarget: '../etc/passwd' },
      { path: '/app/hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, linkTarget: '/app/a.txt' },
      file('/app/empty', ''),
    ], undefined],
    ['whiteouts and opaque dirs', [
      { path: '/etc/gone', type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0 },
      { path: '/var/cache', type: 'opaque', mode: 0, uid: 0, gid: 0, mtime: 0 },
      { path: '/top', type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0 },
      file('/etc/.wh.literal', 'a file named like a whiteout'),
    ], undefined],
    ['PAX: long and non-ASCII names, big ids, xattrs, odd times', [
      file(long + '/file-with-a-long-name.txt', 'x'),
      { path: long + '/to-long', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1_700_000_000, linkTarget: long.repeat(2) },
      file('/données/naïve-файл.txt', 'unicode'),
      file('/ids', 'big', { uid: 3_000_000, gid: 70_000_000 }),
      file('/old', 'negative time', { mtime: -5 }),
      file('/fraction', 'fraction', { mtime: 1_700_000_000.75 }),
    ], undefined],
    // Values are byte strings (latin1): a real v2 security.capability struct
    // (cap_net_bind_service, bytes >= 0x80 would break a UTF-8 round trip),
    // and values holding '=', '\n' and NUL that a line-based parser splits.
    ['xattrs', [
      file('/caps', 'cap', { xattrs: { 'security.capability': CAP_NET_BIND_SERVICE } }),
      file('/high', 'high', { xattrs: { 'user.bytes': '\u00ff\u0080\u00c3\u00a9\u0000=\n1 x=y\n' } }),
      { path: '/d', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000, xattrs: { 'user.dir': 'd', 'trusted.t': 't' } },
      { path: '/caps-link', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, linkTarget: '/caps' },
    ], undefined],
    ['SOURCE_DATE_EPOCH clamps', [file('/new', 'n', { mtime: 2_000_000_000 }), file('/older', 'o', { mtime: 1_000 })], 1_500_000_000],
  ];
}

/** Throws when a saved index differs from a scanned one; returns a one-line summary. */
export async function checkSavedLayerIndex(): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'ocistack-index-check-'));
  try {
    const store = new BlobStore(root);
    let n = 0;
    for (const [name, entries, sde] of cases()) {
      const layer = await writeLayer(entries, { store, sourceDateEpoch: sde });
      const file = layerIndexPath(store, layer.digest);
      if (!existsSync(file)) throw new Error(`layer index check (${name}): the writer saved no index`);
      const saved = JSON.parse(readFileSync(file, 'utf8'));
      rmSync(file);
      const scanned = JSON.parse(JSON.stringify(await indexLayer(store, layer.digest)));
      if (!isDeepStrictEqual(saved, scanned)) {
        throw new Error(`layer index check (${name}): saved index differs from a scan:\nsaved:   ${JSON.stringify(saved.entries)}\nscanned: ${JSON.stringify(scanned.entries)}`);
      }
      // Equal could also mean "both lost them": the scan must return every xattr written, byte for byte.
      for (const e of entries) {
        if (!e.xattrs) continue;
        const got = scanned.entries.find((s: { path: string }) => s.path === e.path)?.xattrs;
        if (!isDeepStrictEqual(got, e.xattrs)) throw new Error(`layer index check (${name}): ${e.path} scanned xattrs ${JSON.stringify(got)}, wrote ${JSON.stringify(e.xattrs)}`);
      }
      n += saved.entries.length;
    }
    return `layer index: saved = scanned for ${cases().length} layers (${n} entries)`;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
