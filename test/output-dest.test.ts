/**
 * `--digest-file`, `--metadata-file` and `--output` destinations are checked
 * before the build starts: a bad one fails with code OUTPUT_DEST while the
 * base image's registry (a counting TCP server started here) has seen no
 * connection at all. Good ones get the right content, `--metadata-file` with
 * buildx's keys.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { build } from '../lib/engine/build.js';
import { OcistackError } from '../lib/errors.js';
import { ocistack } from './helpers/cli.js';
import { makeTempDir } from './helpers/tools.js';

/** A "registry" that counts connections and drops each at once (so even old code fails fast instead of hanging). */
async function countingServer(): Promise<{ host: string; connections(): number; close(): Promise<void> }> {
  let count = 0;
  const server = net.createServer((s) => {
    count++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { host: `127.0.0.1:${port}`, connections: () => count, close: () => new Promise((r) => server.close(() => r())) };
}

function context(from: string): string {
  const dir = makeTempDir('dest-ctx');
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${from}\nCOPY a /a\n`);
  writeFileSync(join(dir, 'a'), 'a\n');
  return dir;
}

const env = () => ({ OCISTACK_CACHE_DIR: join(makeTempDir('dest-cache'), 'c') });

test('bad destinations fail before the build starts: OUTPUT_DEST, exit 1, the base registry saw no connection', async () => {
  const reg = await countingServer();
  try {
    const ctx = context(`${reg.host}/giteaadmin/base:1`);
    const work = makeTempDir('dest-work');
    const aFile = join(work, 'a-file');
    writeFileSync(aFile, 'x');
    const aDir = join(work, 'a-dir');
    mkdirSync(aDir);
    const notLayout = join(work, 'not-layout');
    mkdirSync(notLayout);
    writeFileSync(join(notLayout, 'README'), 'x');
    const archiveDir = join(work, 'dir.tar');
    mkdirSync(archiveDir);
    const cases: [string[], RegExp][] = [
      [['--digest-file', join(work, 'missing', 'digest.txt')], /--digest-file .*digest\.txt: directory .*missing does not exist/],
      [['--digest-file', join(aFile, 'digest.txt')], /a-file\/digest\.txt: a part of this path is a file/],
      [['--metadata-file', aDir], /--metadata-file .*a-dir is a directory/],
      [['--metadata-file', join(work, 'nope', 'meta.json')], /--metadata-file .*directory .*nope does not exist/],
      [['--output', `type=oci,dest=${aFile}`], /--output dest .*a-file is an existing file, but an OCI layout is a directory/],
      [['--output', `type=oci,dest=${notLayout}`], /--output dest .*not-layout exists and is not an OCI image layout/],
      [['--output', `type=oci,dest=${join(aFile, 'sub', 'layout')}`], /a-file\/sub\/layout: a part of this path is a file, not a directory/],
      [['--digestfile', join(work, 'missing', 'digest.txt')], /--digest-file .*digest\.txt: directory .*missing does not exist/],
      [['--output', `type=oci,dest=${archiveDir}`], /--output dest .*dir\.tar is a directory, but an OCI archive is a file/],
      [['--output', `type=docker,dest=${aDir}`], /--output dest .*a-dir is a directory, but a docker archive is a file/],
      [['--output', `type=docker,dest=${join(aFile, 'image.tar')}`], /a-file\/image\.tar: a part of this path is a file/],
      [['--output', `type=local,dest=${notLayout}`], /--output dest .*not-layout exists and is not empty/],
      [['-o', aFile], /--output dest .*a-file is an existing file, but a local output is a directory/],
      // One bad output among good ones still fails first.
      [['-o', `type=oci,dest=${join(work, 'fine.tar')}`, '-o', `type=local,dest=${notLayout}`], /not-layout exists and is not empty/],
    ];
    for (const [flags, message] of cases) {
      const r = await ocistack(['build', '--progress', 'quiet', ...flags, '-t', `${reg.host}/giteaadmin/out:1`, ctx], { env: env() });
      assert.is(r.code, 1, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, flags.join(' '));
      assert.match(r.stderr, /hint: /);
      assert.is(r.stdout, '', 'no digest printed');
      assert.is(reg.connections(), 0, `${flags.join(' ')}: checked before any pull`);
    }
    // The library checks output destinations too (--output goes through build()).
    for (const output of [{ type: 'oci', dest: aFile }, { type: 'local', dest: notLayout }, { type: 'docker', dest: aDir }] as const) {
      try {
        await build({ context: ctx, output, cacheDir: join(makeTempDir('dest-cache'), 'c'), env: {} });
        assert.unreachable('build succeeded');
      } catch (e) {
        assert.instance(e, OcistackError);
        assert.is((e as OcistackError).code, 'OUTPUT_DEST', `${output.type}: ${(e as Error).message}`);
      }
    }
    assert.equal(readdirSync(work).sort(), ['a-dir', 'a-file', 'dir.tar', 'not-layout'], 'nothing written, no temp left');
    assert.equal(readdirSync(notLayout), ['README']);
    assert.is(reg.connections(), 0);
  } finally {
    await reg.close();
  }
});

test('good destinations: digest file, buildx-style metadata file and a layout in directories that do not exist yet', async () => {
  const ctx = context('scratch');
  const work = makeTempDir('dest-good');
  const digestFile = join(work, 'digest.txt');
  const metaFile = join(work, 'meta.json');
  const layout = join(work, 'new', 'parents', 'layout');
  const tag = 'localhost:5000/giteaadmin/app:1';
  const r = await ocistack(['build', '--progress', 'quiet', '-t', tag, '--digest-file', digestFile, '--metadata-file', metaFile, '--output', `type=oci,dest=${layout}`, ctx], { env: env() });
  assert.is(r.code, 0, r.stderr);
  const digest = r.stdout.trim();
  assert.is(readFileSync(digestFile, 'utf8'), `${digest}\n`);
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Record<string, unknown>;
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number; mediaType: string }[] };
  assert.is(index.manifests[0]!.digest, digest);
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string; size: number; mediaType: string }[] };
  assert.is(meta['containerimage.digest'], digest);
  assert.is(meta['containerimage.config.digest'], manifest.config.digest);
  assert.equal(meta['containerimage.descriptor'], { mediaType: index.manifests[0]!.mediaType, digest, size: index.manifests[0]!.size });
  assert.is(meta['image.name'], tag);
  assert.equal(meta['ocistack.layers'], manifest.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })));
  assert.equal(meta['ocistack.pushed'], []);
  // Written by rename: no temp file beside them.
  assert.equal(readdirSync(work).sort(), ['digest.txt', 'meta.json', 'new']);
});

test.run();
