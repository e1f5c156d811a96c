/**
 * Self-check of the parallel gzip writer (lib/layer/parallel-gzip.ts), run
 * by the build benchmark before it measures anything, and on its own:
 *
 *   node dist/bench/build-gzip-check.js
 *
 * For inputs around the block size: gunzip (node's zlib and Debian's
 * `gzip -t`) gives the input back, the output does not depend on how the
 * input was cut into writes, and the header has no time and OS 255.
 */
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { GZIP_BLOCK, looksIncompressible, ParallelGzip } from '../lib/layer/parallel-gzip.js';
import { Prng, textBytes } from '../bench/build-workloads.js';

async function gzipChunks(chunks: Buffer[], level = 6): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks, { objectMode: false }),
    new ParallelGzip(level, 255),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

function cut(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = Math.max(1, sizes[i++ % sizes.length]!);
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}

function fail(msg: string): never {
  throw new Error(`parallel gzip check failed: ${msg}`);
}

/** Throws when the parallel gzip writer is wrong; returns a one-line summary. */
export async function checkParallelGzip(): Promise<string> {
  const rng = new Prng(42);
  const random = Buffer.allocUnsafe(GZIP_BLOCK + 12345);
  rng.fill(random);
  const cases: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['1 byte', Buffer.from('x')],
    ['one block exactly', textBytes(rng, GZIP_BLOCK)],
    ['one block + 1', textBytes(rng, GZIP_BLOCK + 1)],
    ['5.5 blocks of text', textBytes(rng, Math.floor(GZIP_BLOCK * 5.5))],
    ['random, 1 block + a bit', random],
    ['zeros, 3 blocks', Buffer.alloc(GZIP_BLOCK * 3)],
    ['random block, text block, random block', Buffer.concat([random.subarray(0, GZIP_BLOCK), textBytes(rng, GZIP_BLOCK), random.subarray(0, GZIP_BLOCK)])],
  ];
  let checked = 0;
  for (const [name, data] of cases) {
    const whole = await gzipChunks(data.length ? [data] : []);
    if (!zlib.gunzipSync(whole).equals(data)) fail(`${name}: gunzip does not give the input back`);
    if (whole[0] !== 0x1f || whole[1] !== 0x8b || whole.readUInt32LE(4) !== 0 || whole[9] !== 255) fail(`${name}: header has a time or the wrong OS byte`);
    const gz = spawnSync('gzip', ['-t'], { input: whole });
    if (gz.status !== 0) fail(`${name}: gzip -t rejects it: ${gz.stderr}`);
    for (const sizes of [[1, 511, 512, 4096], [65536], [GZIP_BLOCK - 1, 2], [3 * GZIP_BLOCK]]) {
      const again = await gzipChunks(cut(data, sizes));
      if (!again.equals(whole)) fail(`${name}: output depends on how the input was written (${sizes.join(',')})`);
    }
    checked++;
  }
  // Incompressible blocks are stored: output about the input size, not more than 0.1% over.
  const storedOut = (await gzipChunks([random])).length;
  if (storedOut > random.length * 1.001 + 64) fail(`random data grew to ${storedOut} bytes from ${random.length}`);
  const text1 = textBytes(rng, GZIP_BLOCK);
  if (looksIncompressible(text1) || !looksIncompressible(random.subarray(0, GZIP_BLOCK))) fail('the incompressibility probe misjudges text or random data');
  // Ratio against one-stream gzip on text: the dictionary carry-over keeps it close.
  const text = textBytes(rng, 4 * GZIP_BLOCK);
  const ours = (await gzipChunks([text])).length;
  const single = zlib.gzipSync(text, { level: 6 }).length;
  return `parallel gzip: ${checked} cases round-trip and are chunking-independent; text ${ours} vs one-stream ${single} bytes (${((ours / single - 1) * 100).toFixed(2)}%)`;
}
