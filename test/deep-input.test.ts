/**
 * Deep input neither crashes nor crawls: word expansion nested 10,000 deep
 * and a chain of 10,000 stages give a result or a typed error (never a
 * RangeError from the call stack), and paths with many components cost work
 * linear in their depth. Work is counted (ImageFs.steps), never timed.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ShellLex, ShellLexError, MAX_EXPANSION_DEPTH } from '../lib/dockerfile/lex.js';
import { plan } from '../lib/dockerfile/plan.js';
import { dispatch, newStageState } from '../lib/dockerfile/dispatch.js';
import { build } from '../lib/engine/build.js';
import { copyLayer } from '../lib/engine/copy.js';
import { openContext } from '../lib/context/index.js';
import { OcistackError } from '../lib/errors.js';
import { BlobStore } from '../lib/image/store.js';
import { openImageFs, writeLayer } from '../lib/layer/index.js';
import type { LayerEntry } from '../lib/layer/types.js';
import { copyIns, tempDir } from './copy-util.js';

const root = tempDir('deep-input');
const nested = (n: number, inner = 'x') => '${a:-'.repeat(n) + inner + '}'.repeat(n);
const unset = { get: () => undefined };

test('expansion nested 10,000 deep is a ShellLexError, not a stack overflow', () => {
  for (const word of [nested(10_000), '"${a:-'.repeat(10_000) + 'x' + '}"'.repeat(10_000)]) {
    try {
      new ShellLex().processWord(word, unset);
      assert.unreachable('must fail');
    } catch (e) {
      assert.instance(e, ShellLexError, String(e));
      assert.match((e as Error).message, /nested more than \d+ levels/);
      assert.ok((e as Error).message.length < 400, 'the 60,000-character word is not repeated in full');
    }
  }
});

test('expansion nested up to the limit still expands', () => {
  assert.is(new ShellLex().processWord(nested(MAX_EXPANSION_DEPTH), unset), 'x');
  assert.is(new ShellLex().processWord(nested(MAX_EXPANSION_DEPTH, '$b'), { get: (k: string) => (k === 'b' ? 'B' : undefined) }), 'B');
});

test('ENV and ARG values nested 10,000 deep: a DOCKERFILE_SYNTAX error at their line', () => {
  const p = plan(`FROM scratch\nARG X=${nested(10_000)}\nENV Y=${nested(10_000)}\n`);
  for (const ins of p.stages[0]!.instructions) {
    try {
      dispatch(ins, newStageState({ stage: p.stages[0] }));
      assert.unreachable('must fail');
    } catch (e) {
      assert.instance(e, OcistackError, String(e));
      assert.is((e as OcistackError).code, 'DOCKERFILE_SYNTAX');
      assert.is((e as OcistackError).location?.line, ins.location.line);
    }
  }
});

function chain(n: number): string {
  let df = 'FROM scratch AS s0\nENV A=0\n';
  for (let i = 1; i < n; i++) df += `FROM s${i - 1} AS s${i}\n`;
  return df;
}

test('a chain of 10,000 stages plans and builds', async () => {
  const p = plan(chain(10_000));
  assert.is(p.order.length, 10_000);
  assert.is(p.order[0], 0);
  assert.is(p.target, 9_999);
  const r = await build({ context: root, dockerfileText: chain(10_000) + 'ENV B=$A\n', cacheDir: path.join(root, 'cache'), sourceDateEpoch: 0 });
  assert.match(r.manifestDigest, /^sha256:/);
});

/** A layer holding one chain of `n` directories `/d/d/...` with a file at the bottom. */
async function deepImage(store: BlobStore, n: number) {
  const entries: LayerEntry[] = [];
  let p = '';
  for (let i = 0; i < n; i++) {
    p += '/d';
    entries.push({ path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1 });
  }
  entries.push({ path: `${p}/f`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, size: 1, content: () => (async function* () { yield Buffer.from('x'); })() });
  const layer = await writeLayer(entries, { store });
  return { fs: await openImageFs(store, [layer.digest]), deepest: p };
}

/** What COPY and WORKDIR do with a deep destination: every prefix in turn, then the whole path. */
async function prefixWalkSteps(n: number): Promise<number> {
  const store = new BlobStore(path.join(root, `store-${n}`));
  const { fs: image, deepest } = await deepImage(store, n);
  image.steps = 0;
  let cur = '';
  for (let i = 0; i < n; i++) {
    cur += '/d';
    assert.is(image.lstat(cur)?.type, 'dir');
  }
  assert.is(image.stat(`${deepest}/f`)?.type, 'file');
  assert.is(image.resolve(`${deepest}/f`), `${deepest}/f`);
  return image.steps;
}

test('resolving every prefix of a deep image path costs linear work', async () => {
  const small = await prefixWalkSteps(100);
  const big = await prefixWalkSteps(400);
  // Linear: 4x the components, about 4x the steps (quadratic or worse would be 16x+).
  assert.ok(big <= 5 * small, `steps for 100 components: ${small}, for 400: ${big}`);
});

/** COPY of a context directory nested `n` deep into an empty image; the target's resolution steps. */
async function deepCopySteps(n: number): Promise<number> {
  const ctx = path.join(root, `ctx-${n}`);
  const dir = path.join(ctx, ...Array.from({ length: n }, () => 'd'));
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const store = new BlobStore(path.join(root, `copy-store-${n}`));
  const target = await openImageFs(store, []);
  const context = await openContext({ dir: ctx });
  await copyLayer({ instruction: copyIns(['d'], '/x/'), location: { file: 'Dockerfile', line: 2 }, context, target, workdir: '/', store, sourceDateEpoch: 0 });
  return target.steps;
}

test('COPY of a deeply nested directory costs linear work in the image', async () => {
  const small = await deepCopySteps(100);
  const big = await deepCopySteps(400);
  assert.ok(big <= 5 * small, `steps for 100 levels: ${small}, for 400: ${big}`);
});

test.after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
