/**
 * Small files of a layer, created by a few worker threads at once instead
 * of one after the other on the JS thread. Creating a file is the cost of
 * applying a node_modules-like layer: on ext4 without a journal (this
 * project's CI machine) the kernel's inode allocation skips recently freed
 * inodes one by one, ~1 ms a file, nearly all system time on one core; two
 * or three threads creating files get 2-2.5x (docs/performance.md, "cold
 * build").
 *
 * The applier (apply-layer.ts) stays the only one that decides anything: it
 * cleans and resolves the path, makes the parents, removes what was there,
 * and only then hands over {path, bytes, owner, mode, times}; the worker
 * (file-writer-worker.ts) just creates that file with O_EXCL|O_NOFOLLOW, as
 * the applier would. Before anything that could change a directory a job
 * writes into, or look at a file not yet written (removing, listing,
 * linking to it, setting directory times at the end), the applier calls
 * {@link FileWriters.drain}, which blocks until every job is done
 * (Atomics.wait on a shared counter; the applier is synchronous) and
 * returns what went wrong (read synchronously with receiveMessageOnPort).
 *
 * The workers are started on first use, shared by every applier of the
 * process, and unref'd (an idle pool never keeps the process alive).
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

export interface FileJob {
  /** Which applier it is for (its problems go back to it). */
  applier: number;
  /** Absolute host path (resolved by the applier, parents made). */
  path: string;
  /** Root-relative, for messages. */
  rel: string;
  /** The whole content, in a buffer of its own (transferred to the worker, not copied). */
  data: Uint8Array;
  /** fchown to uid:gid (privileged appliers only). */
  chown: boolean;
  uid: number;
  gid: number;
  mode: number;
  atime: number;
  mtime: number;
}

export interface FileJobProblem {
  applier: number;
  rel: string;
  /** 'owner': fchown refused (EPERM/EINVAL, an unmapped id), the file is there; 'error': the file could not be written. */
  kind: 'owner' | 'error';
  code?: string;
  message: string;
  uid: number;
  gid: number;
}

/** Jobs handed out and not done, at most (then the applier waits): bounds the file bytes held. */
const MAX_PENDING = 256;
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
/** No file finished for this long while waiting: the threads are gone (see wait()). */
const STALL_MS = 60_000;
/** Jobs sent to a worker in one message. */
const BATCH = 16;

class Pool {
  private readonly counter = new SharedArrayBuffer(4);
  private readonly pending = new Int32Array(this.counter);
  private readonly workers: { worker: Worker; port: MessagePort }[] = [];
  private readonly batches: FileJob[][];
  private next = 0;
  private bytes = 0;
  private readonly problems = new Map<number, FileJobProblem[]>();

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(new URL('./file-writer-worker.js', import.meta.url), { workerData: { counter: this.counter, port: port1 }, transferList: [port1] });
      worker.unref();
      port2.unref();
      this.workers.push({ worker, port: port2 });
    }
    this.batches = this.workers.map(() => []);
  }

  add(job: FileJob): void {
    const size = job.data.byteLength;
    if (Atomics.load(this.pending, 0) + this.batched() >= MAX_PENDING || this.bytes + size > MAX_PENDING_BYTES) this.wait(0);
    const i = this.next;
    this.next = (this.next + 1) % this.workers.length;
    this.batches[i]!.push(job);
    this.bytes += size;
    if (this.batches[i]!.length >= BATCH) this.send(i);
  }

  private batched(): number {
    return this.batches.reduce((n, b) => n + b.length, 0);
  }

  private send(i: number): void {
    const jobs = this.batches[i]!;
    if (!jobs.length) return;
    this.batches[i] = [];
    Atomics.add(this.pending, 0, jobs.length);
    this.workers[i]!.worker.postMessage(jobs, jobs.map((j) => j.data.buffer as ArrayBuffer));
  }

  /** Send what is batched and block until at most `left` jobs are pending. */
  private wait(left: number): void {
    for (let i = 0; i < this.workers.length; i++) this.send(i);
    // A thread that died (it cannot: every call is caught) would never count down; this thread is
    // blocked, so no 'exit' event could say so. A minute without one file done is that, not load.
    let last = Atomics.load(this.pending, 0);
    let since = Date.now();
    for (;;) {
      const n = Atomics.load(this.pending, 0);
      if (n <= left) break;
      if (n !== last) {
        last = n;
        since = Date.now();
      } else if (Date.now() - since > STALL_MS) {
        throw new Error(`the rootfs file writer threads stopped with ${n} files not written`);
      }
      Atomics.wait(this.pending, 0, n, 1000);
    }
    if (left === 0) this.bytes = 0;
    this.collect();
  }

  private collect(): void {
    for (const { port } of this.workers) {
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        const p = m.message as FileJobProblem;
        let list = this.problems.get(p.applier);
        if (!list) this.problems.set(p.applier, (list = []));
        list.push(p);
      }
    }
  }

  /** Every job done; the problems of `applier`'s jobs. */
  drain(applier: number): FileJobProblem[] {
    this.wait(0);
    const out = this.problems.get(applier) ?? [];
    this.problems.delete(applier);
    return out;
  }
}

let pool: Pool | undefined;
let nextApplier = 1;
let handedOut = 0;

/** Files handed to the writer threads by this process so far (tests check the threads were used). */
export function fileWriterJobs(): number {
  return handedOut;
}

/**
 * Threads writing files: `OCISTACK_FILE_WRITERS` when set (at most 16),
 * else none: every file on the JS thread. Off by default because the two
 * extra V8 isolates cost ~30 MB of peak RSS (issue 11's memory target) for
 * 18-37% off a big layer's snapshot on this machine's ext4, which may be
 * less where file creation is cheaper (docs/performance.md). On 2 cores,
 * 3 threads measured no better than 2.
 */
export function fileWriterThreads(setting = process.env.OCISTACK_FILE_WRITERS): number {
  if (setting !== undefined && /^\s*\d+\s*$/.test(setting)) return Math.min(16, Number(setting));
  return 0;
}

/** One applier's handle on the shared pool. */
export class FileWriters {
  private readonly id = nextApplier++;
  /** Paths handed out since the last drain (a lookup of one must drain first). */
  readonly paths = new Set<string>();

  write(job: Omit<FileJob, 'applier'>): void {
    pool ??= new Pool(Math.max(1, fileWriterThreads()));
    this.paths.add(job.rel);
    handedOut++;
    pool.add({ ...job, applier: this.id });
  }

  /** Block until every file handed out is written; what went wrong with them. */
  drain(): FileJobProblem[] {
    if (this.paths.size === 0 || !pool) return [];
    this.paths.clear();
    return pool.drain(this.id);
  }
}
