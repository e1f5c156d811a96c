/**
 * gzip on every core, with output that depends only on the input: the input
 * is cut into fixed 1 MiB blocks, each block is deflated on its own (in
 * node's thread pool, several at once) with the 32 KiB before it as the
 * dictionary, and ended with a sync flush so the pieces join into one
 * deflate stream (what pigz does). Block size, level and dictionary are
 * fixed, so the bytes are the same on every machine whatever its core count;
 * the compression ratio is within a fraction of a percent of one-stream gzip.
 *
 * A block that looks incompressible (three 8 KiB samples do not shrink by
 * 2% at level 1: already-compressed files, random data) is stored (level 0)
 * instead: deflate would spend ~35 ms of CPU per MiB to find nothing and
 * store it anyway. The choice depends only on the block's bytes, so the
 * output stays the same everywhere.
 *
 * The gzip header has no name and no time, and OS "unknown" (255), like Go's
 * compress/gzip; the trailer carries the CRC-32 and size of the input.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { availableParallelism } from 'node:os';
import * as zlib from 'node:zlib';
import { cpuBudget } from '../cpu-budget.js';

/** Input bytes per independently compressed block. Part of the output: changing it changes digests. */
export const GZIP_BLOCK = 1024 * 1024;
/** Dictionary carried from one block into the next (deflate's window). */
const WINDOW = 32 * 1024;
/**
 * Blocks compressing at once: one per core, at most 3 so that one of libuv's
 * 4 pool threads stays free for the file reads feeding us. Does not change
 * the output; bounds memory to a few MiB. Each block in flight also holds a
 * unit of the process-wide CPU budget (lib/cpu-budget.ts), so several
 * streams at once (parallel stages) share the cores instead of each taking
 * IN_FLIGHT of them.
 */
const IN_FLIGHT = Math.max(1, Math.min(availableParallelism(), 3));
/**
 * Blocks handed out and not yet written downstream. More than IN_FLIGHT, so
 * the next blocks are already filled and waiting for a CPU unit when a
 * deflate finishes: with only IN_FLIGHT, the cores idled while the JS
 * thread read the files of the next block (about 1.2 of 2 cores busy).
 * Bounds memory to QUEUED blocks of input and output (a few MiB).
 */
const QUEUED = IN_FLIGHT + 2;
/** Room for a whole block's output, so each block is one job in the thread pool, not one per 16 KiB. */
const OUT_ROOM = GZIP_BLOCK + 64 * 1024;

/** Bytes per sample of the incompressibility probe. */
const PROBE = 8 * 1024;

/** Whether deflate would gain (almost) nothing on `block`: start, middle and end samples all stay above 98% at level 1. */
export function looksIncompressible(block: Buffer): boolean {
  if (block.length < 4 * PROBE) return false;
  for (const start of [0, (block.length >> 1) - PROBE / 2, block.length - PROBE]) {
    const sample = block.subarray(start, start + PROBE);
    // Small and synchronous on purpose (~0.1 ms): the decision must be made before the block is handed out.
    if (zlib.deflateRawSync(sample, { level: 1 }).length < sample.length * 0.98) return false;
  }
  return true;
}

function deflateBlock(block: Buffer, dictionary: Buffer | undefined, level: number, last: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const opts: zlib.ZlibOptions = { level, chunkSize: OUT_ROOM, finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH };
    if (dictionary) opts.dictionary = dictionary;
    zlib.deflateRaw(block, opts, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/** zlib's XFL byte for a level: 2 = best compression, 4 = fastest, else 0. */
function extraFlags(level: number): number {
  return level === 9 ? 2 : level === 1 ? 4 : 0;
}

/** A Transform that gzips what is written to it; see the module comment for the format. */
export class ParallelGzip extends Transform {
  private block: Buffer = Buffer.allocUnsafe(GZIP_BLOCK);
  /**
   * Input blocks whose deflate has finished, filled again instead of a new
   * 1 MiB each: a freed block is garbage until V8's next full GC, and at
   * ~20 MB/s of input that garbage was tens of MB of the peak RSS.
   */
  private readonly spare: Buffer[] = [];
  private used = 0;
  private dictionary: Buffer | undefined;
  private readonly queue: Promise<Buffer>[] = [];
  /** The last block's unit acquisition: the next block asks for its unit only after it (units in block order). */
  private starting: Promise<void> = Promise.resolve();
  /** Blocks of this stream still in the thread pool (each holds a CPU budget unit). */
  private deflating = 0;
  /** Called when the last block in flight finishes (ends a wait for the budget, see unit()). */
  private onIdle: (() => void) | undefined;
  private crc = 0;
  private size = 0;
  private headerDone = false;

  constructor(
    private readonly level = 6,
    private readonly os = 255,
  ) {
    super();
  }

  private header(): void {
    if (this.headerDone) return;
    this.headerDone = true;
    this.push(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extraFlags(this.level), this.os]));
  }

  /**
   * A CPU budget unit for the next block. With no block in flight it is
   * taken at once (`force`): every stream makes progress whatever holds the
   * budget (RUN processes, other streams). Otherwise it waits for a free
   * unit, or until this stream's last block in flight finishes, whichever
   * comes first (else a stream could wait with nothing of its own running,
   * e.g. behind two long RUNs on two cores).
   */
  private async unit(): Promise<void> {
    if (this.deflating === 0) return cpuBudget.force();
    const stop = new AbortController();
    const idle = new Promise<'idle'>((resolve) => (this.onIdle = () => resolve('idle')));
    const got = cpuBudget.acquire(stop.signal).then(
      () => true,
      () => false,
    );
    try {
      if ((await Promise.race([got, idle])) !== 'idle') return;
      stop.abort();
      // Granted just before the abort: we hold it. Else take one without waiting.
      if (!(await got)) cpuBudget.force();
    } finally {
      this.onIdle = undefined;
    }
  }

  /**
   * Hand the filled block to the thread pool (once it has a CPU unit; units
   * are taken in block order) and go on filling the next one; wait for the
   * oldest only when QUEUED blocks are out.
   */
  private async dispatch(last: boolean): Promise<void> {
    const block = this.block;
    const data = block.subarray(0, this.used);
    const stored = looksIncompressible(data);
    const dictionary = stored ? undefined : this.dictionary;
    const started = this.starting.then(() => this.unit());
    this.starting = started;
    const p = started.then(() => {
      this.deflating++;
      const out = deflateBlock(data, dictionary, stored ? 0 : this.level, last);
      const done = () => {
        // zlib has read all of the block: it may be filled again (at most QUEUED + 1 blocks exist).
        this.spare.push(block);
        this.deflating--;
        cpuBudget.release();
        if (this.deflating === 0) this.onIdle?.();
      };
      out.then(done, done);
      return out;
    });
    p.catch(() => undefined); // awaited in order below; never "unhandled" meanwhile
    this.queue.push(p);
    this.dictionary = Buffer.from(data.subarray(Math.max(0, data.length - WINDOW)));
    this.block = this.spare.pop() ?? Buffer.allocUnsafe(GZIP_BLOCK);
    this.used = 0;
    while (this.queue.length > (last ? 0 : QUEUED - 1)) this.push(await this.queue.shift()!);
  }

  private async write_(chunk: Buffer): Promise<void> {
    this.header();
    this.crc = zlib.crc32(chunk, this.crc);
    this.size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(GZIP_BLOCK - this.used, chunk.length - off);
      chunk.copy(this.block, this.used, off, off + n);
      this.used += n;
      off += n;
      // A full block is only sent once more input arrives, so the last block is always the one flushed with Z_FINISH.
      if (this.used === GZIP_BLOCK && off < chunk.length) await this.dispatch(false);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const go = async () => {
      if (this.used === GZIP_BLOCK && chunk.length > 0) await this.dispatch(false);
      await this.write_(chunk);
    };
    go().then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    const go = async () => {
      this.header();
      await this.dispatch(true);
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.size % 2 ** 32, 4);
      this.push(trailer);
    };
    go().then(() => cb(), cb);
  }
}
