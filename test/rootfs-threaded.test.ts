/**
 * The applier's worker threads for small files (lib/rootfs/file-writers.ts):
 * a layer with more small files than the applier writes itself gives the
 * same tree (owners, modes, times, contents, link counts) with the threads
 * as without them (OCISTACK_FILE_WRITERS=0), flattened and in diff form,
 * root and unprivileged; including what must wait for the threads (a
 * duplicate name, a hard link to a file just handed out, a directory of
 * them removed and replaced by a symlink, a whiteout and an opaque marker
 * in the next layer), and nothing lands outside the rootfs through a
 * symlink that replaced a directory of handed-out files.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ensureLayerSnapshots, materializeChain } from '../lib/rootfs/index.js';
import { fileWriterJobs } from '../lib/rootfs/file-writers.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import { describeTree } from './helpers/tree-compare.js';
import type { RawEntry } from './helpers/raw-tar.js';
import { makeTempDir } from './helpers/tools.js';
import { newStore, putLayers } from './rootfs-util.js';

const isRoot = process.getuid?.() === 0;
const T = 1_600_000_000;

/** `n` small files below `dir`, spread over a few subdirectories, with varied modes, owners, times and sizes. */
function files(dir: string, n: number): RawEntry[] {
  const out: RawEntry[] = [];
  for (let d = 0; d < 4; d++) out.push({ name: `${dir}/d${d}/`, type: '5', mode: d === 3 ? 0o555 : 0o755, mtime: T + d });
  for (let i = 0; i < n; i++) {
    out.push({
      name: `${dir}/d${i % 4}/f${i}.js`,
      mode: [0o644, 0o600, 0o755, 0o4755, 0o444][i % 5],
      uid: i % 3 === 0 ? 1000 + i : 0,
      gid: i % 7 === 0 ? 2000 + i : 0,
      mtime: T + 10 * i,
      content: i % 11 === 0 ? '' : `module.exports = ${i};\n`.repeat(1 + (i % 50)),
    });
  }
  return out;
}

function layers(outside: string): RawEntry[][] {
  return [
    [
      ...files('a', 300),
      // The same name again: the later one wins (the first may still be in a thread's hands).
      { name: 'a/d1/f1.js', content: 'second\n', mode: 0o640, mtime: T + 5 },
      // A hard link to a file just handed out.
      { name: 'a/link.js', type: '1', linkname: 'a/d2/f298.js' },
      // A directory full of handed-out files, removed and replaced by a symlink out of the root, then written through.
      ...files('gone', 40),
      { name: 'gone', type: '2', linkname: outside },
      { name: 'gone/through.js', content: 'inside\n' },
      { name: 'late/f.js', content: 'late\n', mtime: T + 7 },
    ],
    [
      { name: 'a/d0/.wh.f0.js', content: '' },
      { name: 'a/d3/.wh..wh..opq', content: '' },
      { name: 'a/d3/new.js', content: 'new\n' },
      ...files('b', 200),
    ],
  ];
}

/** The tree as lines; directories without a header of their own are as new as the run: their mtime is left out. */
function tree(dir: string): string[] {
  return [...describeTree(dir, { mtimes: true, xattrs: true }).values()].map((l) => l.replace(/ mtime=(\d+)/, (m, t: string) => (Number(t) > T + 1e6 ? ' mtime=(now)' : m)));
}

/** Lines of `a` not in `b` and the other way round (a readable failure instead of two 500-line dumps). */
function differences(a: string[], b: string[]): string {
  const sa = new Set(a);
  const sb = new Set(b);
  return [...a.filter((l) => !sb.has(l)).map((l) => `- ${l}`), ...b.filter((l) => !sa.has(l)).map((l) => `+ ${l}`)].slice(0, 20).join('\n');
}

async function apply(writers: string, form: 'flat' | 'diff', privileged: boolean): Promise<{ trees: string[][]; warnings: string[]; jobs: number; outside: string }> {
  const prev = process.env.OCISTACK_FILE_WRITERS;
  process.env.OCISTACK_FILE_WRITERS = writers;
  const before = fileWriterJobs();
  // The same absolute "outside" path in every run, so the trees compare equal (it is only ever a name inside the rootfs).
  const outside = '/tmp/ocistack-threaded-outside';
  fs.rmSync(outside, { recursive: true, force: true });
  fs.mkdirSync(outside);
  try {
    const store = newStore();
    const chain = await putLayers(store, layers(outside));
    const events: ProgressEvent[] = [];
    const onProgress = (e: ProgressEvent) => events.push(e);
    const trees: string[][] = [];
    if (form === 'flat') {
      const dest = join(makeTempDir('rootfs-threaded'), 'rootfs');
      await materializeChain({ store, ...chain, dest, privileged, onProgress });
      trees.push(tree(dest));
    } else {
      const cacheDir = makeTempDir('rootfs-threaded-cache');
      const s = await ensureLayerSnapshots({ store, ...chain, cacheDir, privileged, onProgress });
      for (const l of s.layers) trees.push(tree(l.fs));
    }
    const warnings = events.filter((e) => e.type === 'warning').map((e) => JSON.stringify(e));
    return { trees, warnings, jobs: fileWriterJobs() - before, outside: fs.readdirSync(outside).join(',') };
  } finally {
    if (prev === undefined) delete process.env.OCISTACK_FILE_WRITERS;
    else process.env.OCISTACK_FILE_WRITERS = prev;
    fs.rmSync(outside, { recursive: true, force: true });
  }
}

for (const form of ['flat', 'diff'] as const) {
  for (const privileged of isRoot ? [true, false] : [false]) {
    test(`${form} form, ${privileged ? 'root' : 'unprivileged'}: worker threads give the tree the JS thread gives`, async () => {
      const own = await apply('0', form, privileged);
      const threaded = await apply('2', form, privileged);
      assert.is(own.jobs, 0, 'OCISTACK_FILE_WRITERS=0 writes every file on the JS thread');
      assert.ok(threaded.jobs > 200, `the threads wrote most small files (${threaded.jobs})`);
      assert.is(threaded.outside, '', 'nothing was written through the symlink out of the root');
      assert.is(own.outside, '');
      assert.is(threaded.trees.length, own.trees.length);
      for (const [i, t] of own.trees.entries()) assert.is(differences(t, threaded.trees[i]!), '', `tree ${i}: - JS thread, + worker threads`);
      assert.equal(threaded.warnings, own.warnings);
      const top = own.trees[0]!.join('\n');
      assert.match(top, /\/a\/d1\/f1\.js f 0640 0:0 size=7/, 'the later duplicate wins');
      assert.match(top, /\/a\/link\.js f .* link=\/a\/d2\/f298\.js/, 'a hard link to a file handed to a thread');
      assert.match(top, /\/gone l /);
      assert.match(top, /\/tmp\/ocistack-threaded-outside\/through\.js f /, 'written inside the rootfs');
      if (privileged) assert.match(top, /\/a\/d1\/f33\.js f 4755 1033:0 /, 'owner, then setuid mode');
    });
  }
}

test.run();
