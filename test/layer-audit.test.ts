/**
 * The layer audit itself (test/layer-audit.ts, test/layer-audit-keep.ts):
 * it must find layers in blob stores that are being removed, pass a clean
 * layer, and fail deliberately bad ones with GNU tar's words. An audit that
 * cannot fail, or that sees no layers, would prove nothing.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { BlobStore } from '../lib/image/store.js';
import { writeLayer } from '../lib/layer/index.js';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type TarHeader } from '../lib/layer/tar-header.js';
import { bytes } from './copy-util.js';
import { auditDir } from './layer-audit.js';
import { excludeFromLayerAudit, keepBlobs } from './layer-audit-keep.js';
import { makeTempDir } from './helpers/tools.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = makeTempDir('layer-audit');

/** Put `bytes` into `dir` under its digest, as the audit directory holds blobs. */
function putBlob(dir: string, data: Buffer): string {
  fs.mkdirSync(dir, { recursive: true });
  const hex = createHash('sha256').update(data).digest('hex');
  fs.writeFileSync(path.join(dir, hex), data);
  return hex;
}

/** A gzip tar made of raw headers: the writer's checks are bypassed on purpose. */
function rawLayer(members: { h: TarHeader; data?: string }[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    parts.push(encodeHeader(m.h));
    if (m.data) parts.push(Buffer.from(m.data), paddingFor(m.data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return gzipSync(Buffer.concat(parts));
}

const fileHeader = (name: string, size = 0): TarHeader => ({ name, type: '0', mode: 0o644, uid: 0, gid: 0, size, mtime: 1700000000 });

test('a clean layer passes, a config blob is skipped', async () => {
  const dir = path.join(root, 'clean');
  const store = new BlobStore(path.join(root, 'store-clean'));
  const r = await writeLayer([{ path: '/a/b', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1700000000, size: 2, content: bytes('hi') }], { store });
  fs.mkdirSync(dir);
  fs.copyFileSync(store.path(r.digest), path.join(dir, r.digest.slice(7)));
  putBlob(dir, Buffer.from('{"architecture":"amd64"}'));
  putBlob(dir, gzipSync(Buffer.from('not a tar at all, only gzip'.repeat(40))));
  const res = await auditDir(dir);
  assert.equal(res, { checked: 1, skipped: 2, failures: [] });
});

test('deliberately bad layers fail with what GNU tar said', async () => {
  const dir = path.join(root, 'bad');
  const escaping = putBlob(dir, rawLayer([{ h: fileHeader('../escape', 1), data: 'x' }]));
  const danglingLink = putBlob(dir, rawLayer([{ h: { ...fileHeader('link'), type: '1', linkname: 'missing' } }]));
  const good = rawLayer([{ h: fileHeader('ok', 2), data: 'ok' }]);
  const truncated = putBlob(dir, good.subarray(0, good.length - 12));
  const res = await auditDir(dir);
  assert.is(res.checked, 3);
  const why = new Map(res.failures.map((f) => [path.basename(f.blob), f.output]));
  assert.is(why.size, 3, JSON.stringify(res.failures, null, 2));
  assert.match(why.get(escaping)!, /\.\.\//);
  assert.match(why.get(danglingLink)!, /Cannot hard link/);
  assert.match(why.get(truncated)!, /unexpected end|Unexpected EOF|exit 2/i);
});

test('the CLI prints how many layers it checked and uvu totals, exit 1 on a bad layer', () => {
  const dir = path.join(root, 'cli');
  putBlob(dir, rawLayer([{ h: fileHeader('../escape', 1), data: 'x' }]));
  putBlob(dir, rawLayer([{ h: fileHeader('fine', 1), data: 'x' }]));
  const r = spawnSync(process.execPath, [path.join(here, 'layer-audit.js'), dir], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  assert.is(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /layer audit: 2 layers extracted with GNU tar --warning=all, 1 with warnings or errors/);
  assert.match(r.stdout, /Total: +2\n +Passed: +1\n/);
});

test('keepBlobs finds blob stores below a directory', async () => {
  const store = new BlobStore(path.join(root, 'nested', 'a', 'b', 'cache'));
  const r = await writeLayer([{ path: '/f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1, content: bytes('f') }], { store });
  const into = path.join(root, 'kept-1');
  assert.is(keepBlobs(path.join(root, 'nested'), into), 1);
  assert.is(keepBlobs(path.join(root, 'nested'), into), 0, 'one file per digest');
  assert.ok(fs.existsSync(path.join(into, r.digest.slice(7))));
  // A store marked as holding deliberately partial layers is left out.
  const marked = new BlobStore(path.join(root, 'marked', 'store'));
  await writeLayer([{ path: '/m', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1, content: bytes('m') }], { store: marked });
  excludeFromLayerAudit(marked.root);
  assert.is(keepBlobs(path.join(root, 'marked'), into), 0);
});

test('the preload keeps blobs of directories removed with fs.rmSync, fs.rm and fs/promises rm (ESM imports too)', async () => {
  const preload = pathToFileURL(path.join(here, 'layer-audit-keep.js')).href;
  const into = path.join(root, 'kept-2');
  const hexes: string[] = [];
  const dirs: string[] = [];
  for (const k of ['sync', 'callback', 'promise']) {
    const store = new BlobStore(path.join(root, `rm-${k}`, 'store'));
    const r = await writeLayer([{ path: `/${k}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: k.length, content: bytes(k) }], { store });
    hexes.push(r.digest.slice(7));
    dirs.push(path.join(root, `rm-${k}`));
  }
  const script = path.join(root, 'remove.mjs');
  fs.writeFileSync(
    script,
    [
      "import { rmSync, rm } from 'node:fs';",
      "import * as fsp from 'node:fs/promises';",
      'const [a, b, c] = process.argv.slice(2);',
      'rmSync(a, { recursive: true, force: true });',
      'await new Promise((ok, bad) => rm(b, { recursive: true }, (e) => (e ? bad(e) : ok())));',
      'await fsp.rm(c, { recursive: true });',
    ].join('\n'),
  );
  const env = { ...process.env, OCISTACK_LAYER_AUDIT: into, NODE_OPTIONS: `--import=${preload}` };
  execFileSync(process.execPath, [script, ...dirs], { env });
  for (const d of dirs) assert.not.ok(fs.existsSync(d), 'still removed');
  assert.equal(fs.readdirSync(into).sort(), [...hexes].sort());
  // Without the variable nothing is kept.
  const off = ['rm-off', 'rm-off-2', 'rm-off-3'].map((d) => path.join(root, d));
  await writeLayer([{ path: '/off', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1, content: bytes('o') }], { store: new BlobStore(path.join(off[0]!, 'store')) });
  for (const d of off.slice(1)) fs.mkdirSync(d);
  execFileSync(process.execPath, [script, ...off], { env: { ...process.env, OCISTACK_LAYER_AUDIT: '', NODE_OPTIONS: `--import=${preload}` } });
  assert.not.ok(fs.existsSync(off[0]!));
  assert.is(fs.readdirSync(into).length, 3);
});

test.run();
