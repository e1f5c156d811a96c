/**
 * The sweep of temp files left by processes killed with -9
 * (lib/temp-files.ts): opening a blob store for writing removes the temp
 * files of dead owners, and keeps those of live processes, of a process
 * that now has a dead owner's pid (start time differs is "dead"; the same
 * start time is "alive"), and of other hosts. OCI layout staging dirs and
 * --digest-file temps beside a destination are swept the same way.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import { writeOciLayout } from '../lib/image/layout.js';
import { MediaType } from '../lib/image/types.js';
import { writeFileAtomic } from '../lib/cli/write-file.js';
import { currentOwner, hostTag, processStartTime } from '../lib/process-owner.js';
import { tempName } from '../lib/temp-files.js';
import { makeTempDir } from './helpers/tools.js';

function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

/** A temp name as process `pid` (started at `start`) on `host` would make it. */
function nameOf(prefix: string, pid: number, start: string, host = currentOwner().host): string {
  return `${prefix}-${pid}-${start || '0'}-${hostTag(host)}-0123456789ab`;
}

test('opening a store for writing sweeps dead owners\' temp files from <cache>/tmp, and only those', async () => {
  const root = makeTempDir('sweep-');
  const tmp = join(root, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const ppid = process.ppid;
  const pstart = processStartTime(ppid) ?? '';
  const dead = deadPid();
  const files = {
    dead: nameOf('pull', dead, '12345'),
    reused: nameOf('layer', ppid, pstart ? String(Number(pstart) + 7) : '1'), // the parent's pid, another start time
    live: nameOf('blob', ppid, pstart), // the parent: alive
    otherHost: nameOf('blob', dead, '1', 'some-other-host'),
    legacyDead: `blob-${dead}-0123456789ab`, // name written by ocistack before owner tags
    unrelated: 'notes.txt',
  };
  for (const n of Object.values(files)) writeFileSync(join(tmp, n), 'partial');
  mkdirSync(join(tmp, nameOf('archive', dead, '9')));
  writeFileSync(join(tmp, nameOf('archive', dead, '9'), 'layer.tar'), 'x');

  const store = new BlobStore(root);
  await store.putBytes(Buffer.from('hello'));
  const left = readdirSync(tmp).sort();
  const expected = [files.live, files.otherHost, files.unrelated];
  if (!pstart) expected.push(files.reused); // no /proc: the start time cannot be checked
  assert.equal(left, expected.sort());
});

test('a new OCI layout and a --digest-file write sweep staging left beside them by a dead process', async () => {
  const work = makeTempDir('sweep-out-');
  const store = new BlobStore(join(work, 'cache'));
  const m = await store.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: `sha256:${'0'.repeat(64)}`, size: 0 }, layers: [] })));
  const dead = deadPid();
  const staging = join(work, nameOf('.out.tmp', dead, '5'));
  mkdirSync(join(staging, 'blobs', 'sha256'), { recursive: true });
  const digestTmp = join(work, nameOf('.digest.tmp', dead, '5'));
  writeFileSync(digestTmp, 'sha256:half');
  const mine = join(work, tempName('.out.tmp')); // this process's own: alive, kept
  mkdirSync(mine);
  // The manifest's config is not in the store: write a layout of the manifest's bytes only.
  await writeOciLayout({ dir: join(work, 'out'), store, manifests: [{ descriptor: { mediaType: 'application/octet-stream', digest: m.digest, size: m.size } }] });
  await writeFileAtomic(join(work, 'digest'), `${m.digest}\n`);
  assert.not.ok(existsSync(staging), 'dead staging dir swept');
  assert.not.ok(existsSync(digestTmp), 'dead digest temp swept');
  assert.ok(existsSync(mine), 'live staging dir kept');
  assert.ok(existsSync(join(work, 'out', 'index.json')));
});

test.run();
