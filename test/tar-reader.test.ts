/**
 * lib/layer/tar-reader.ts on archives GNU tar writes: GNU long names and
 * link names (`L`/`K`), PAX path/linkpath, base-256 ids (GNU format) and PAX
 * ids, V7 archives; corrupt and truncated input is a TarFormatError.
 * (Sparse files, devices and FIFOs: test/add-archive.test.ts.)
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { readTar, TarFormatError, type TarMember } from '../lib/layer/tar-reader.js';
import { makeTempDir } from './helpers/tools.js';

const root = makeTempDir('tar-reader');
const longDir = 'd'.repeat(120);
const longFile = 'f'.repeat(130);
fs.mkdirSync(path.join(root, 'src', longDir), { recursive: true });
fs.writeFileSync(path.join(root, 'src', longDir, longFile), 'long');
fs.symlinkSync(`${longDir}/${longFile}`, path.join(root, 'src', 'to-long'));

async function members(file: string): Promise<(TarMember & { data?: string })[]> {
  const out: (TarMember & { data?: string })[] = [];
  let i = 0;
  for await (const m of readTar(fs.createReadStream(file))) {
    const copy: TarMember & { data?: string } = { ...m };
    if (m.type === 'file') {
      const f = path.join(root, `out-${i++}`);
      await m.extract(f);
      copy.data = fs.readFileSync(f, 'utf8');
    }
    out.push(copy);
  }
  return out;
}

function makeTar(name: string, args: string[]): string {
  const file = path.join(root, name);
  execFileSync('tar', [...args, '-cf', file, '-C', path.join(root, 'src'), longDir, 'to-long']);
  return file;
}

for (const format of ['gnu', 'posix', 'oldgnu'] as const) {
  test(`long names and link targets, ${format} format`, async () => {
    const ms = await members(makeTar(`long-${format}.tar`, [`--format=${format}`]));
    const file = ms.find((m) => m.type === 'file')!;
    assert.is(file.name, `${longDir}/${longFile}`);
    assert.is(file.data, 'long');
    const link = ms.find((m) => m.type === 'symlink')!;
    assert.is(link.linkname, `${longDir}/${longFile}`);
    assert.ok(ms.some((m) => m.type === 'dir' && m.name === `${longDir}/`));
  });
}

test('ids beyond the octal field: base-256 (GNU) and PAX uid/gid', async () => {
  for (const format of ['gnu', 'posix']) {
    const ms = await members(makeTar(`ids-${format}.tar`, [`--format=${format}`, '--owner=3000000', '--group=70000000', '--numeric-owner']));
    for (const m of ms) {
      assert.is(m.uid, 3000000, `${format} uid`);
      assert.is(m.gid, 70000000, `${format} gid`);
    }
  }
});

test('V7 archives: directories by trailing slash', async () => {
  fs.mkdirSync(path.join(root, 'v7', 'short'), { recursive: true });
  fs.writeFileSync(path.join(root, 'v7', 'short', 'a'), 'a');
  execFileSync('tar', ['--format=v7', '-cf', path.join(root, 'v7.tar'), '-C', path.join(root, 'v7'), 'short']);
  const ms = await members(path.join(root, 'v7.tar'));
  assert.ok(ms.some((m) => m.type === 'file' && m.name === 'short/a' && m.data === 'a'));
  assert.ok(ms.some((m) => m.type === 'dir' && m.name === 'short/'), JSON.stringify(ms.map((m) => [m.type, m.name])));
});

test('a bad checksum and a truncated archive are TarFormatErrors', async () => {
  const good = fs.readFileSync(makeTar('good.tar', ['--format=posix']));
  const bad = Buffer.from(good);
  bad[10] = bad[10]! ^ 0x01;
  const e1 = await members2(bad).then(() => undefined, (e: unknown) => e);
  assert.instance(e1, TarFormatError);
  assert.match((e1 as Error).message, /checksum/);
  const e2 = await members2(good.subarray(0, 1024 + 100)).then(() => undefined, (e: unknown) => e);
  assert.instance(e2, TarFormatError);
  assert.match((e2 as Error).message, /unexpected end/);
});

async function members2(buf: Buffer): Promise<void> {
  for await (const m of readTar(Readable.from([buf]))) if (m.type === 'file') await m.extract(path.join(root, 'scratch'));
}

test.run();
