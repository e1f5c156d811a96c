/**
 * sha256Json (lib/image/digest.ts): the step-key hash written out as it is
 * hashed must give exactly sha256(canonicalJson(value)), or every cache key
 * changes (and a KEY_VERSION bump would be needed). Also the layer index
 * saved in pieces (IndexJsonParts) must be the same text as the whole index
 * through JSON.stringify.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { canonicalJson, sha256, sha256Json } from '../lib/image/digest.js';
import { BlobStore } from '../lib/image/store.js';
import { layerIndexPath, saveLayerIndex, type IndexedEntry } from '../lib/layer/layer-index.js';
import { makeTempDir } from './helpers/tools.js';

const same = (v: unknown): void => assert.is(sha256Json(v), sha256(canonicalJson(v)), JSON.stringify(v)?.slice(0, 200));

test('sha256Json is the digest of canonicalJson for what JSON.stringify treats specially', () => {
  const long = (f: (i: number) => unknown) => Array.from({ length: 40 }, (_, i) => f(i));
  same({ v: 3, a: undefined, f: () => 1, s: Symbol('x'), n: null, d: new Date(0), nested: { x: [1, undefined, () => 2] } });
  same(long((i) => (i % 3 === 0 ? undefined : i % 3 === 1 ? () => i : `\u00e9\ud800"\\\n${i}`)));
  same({ words: [{ matched: [['a', 'a', '']], entries: long((i) => [`p/${i}`, 'file', 420, i, 1.5e9 + i / 3, 'sha256:' + 'a'.repeat(64), '']) }] });
  same(Object.assign(Object.create(null) as object, { b: 1, a: long((i) => ({ [`k${i}`]: i })) }));
  same({ toJSON: () => ({ replaced: long(String) }) });
  same(long(() => long((i) => ({ i, nan: NaN, inf: -Infinity, neg0: -0 }))));
});

test('sha256Json of a 100,000-entry key (several 64 KiB chunks) matches', () => {
  same({ reads: { words: [{ entries: Array.from({ length: 100_000 }, (_, i) => [`node_modules/p${i}/index.js`, 'file', 420, i, 1.5e9, 'sha256:' + 'b'.repeat(64), '']) }] } });
});

test('a layer index saved in pieces is the text JSON.stringify makes of the whole index', async () => {
  const store = new BlobStore(makeTempDir('store'));
  const digest = `sha256:${'c'.repeat(64)}` as const;
  for (const n of [0, 1, 1023, 1024, 1025, 5000]) {
    const entries: IndexedEntry[] = Array.from({ length: n }, (_, i) => ({ path: `/a/${i}`, type: i % 2 ? 'file' : 'dir', mode: 0o644, uid: 0, gid: 0, size: i % 2 ? i : 0, mtime: 7, ...(i % 7 ? {} : { xattrs: { 'user.x': 'y' } }) }));
    await saveLayerIndex(store, digest, entries);
    assert.is(fs.readFileSync(layerIndexPath(store, digest), 'utf8'), JSON.stringify({ version: 2, digest, entries }), `${n} entries`);
  }
});

test.run();
