/**
 * Worker thread of file-writers.ts: creates the small files of a layer it is
 * handed, with the same system calls, flags and order as the applier's own
 * path (apply-layer.ts): open O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW 0600,
 * write, fchown (privileged), fchmod, futimes, close. It never resolves a
 * path: the applier resolved it (symlink-free, parents made) before handing
 * it over, and does nothing that could change those parents until every
 * job handed out is done.
 *
 * Counts each finished job down in the shared counter (the applier waits on
 * it with Atomics.wait) and reports what went wrong on its port.
 */
import * as fs from 'node:fs';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { FileJob, FileJobProblem } from './file-writers.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const { counter, port } = workerData as { counter: SharedArrayBuffer; port: MessagePort };
const pending = new Int32Array(counter);

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function write(job: FileJob): FileJobProblem | undefined {
  let fd: number | undefined;
  let problem: FileJobProblem | undefined;
  try {
    fd = fs.openSync(job.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    let off = 0;
    while (off < job.data.length) off += fs.writeSync(fd, job.data, off, job.data.length - off);
    if (job.chown) {
      try {
        fs.fchownSync(fd, job.uid, job.gid);
      } catch (e) {
        // EINVAL: an id outside the user namespace's mapping (a warning, as on the applier's own path).
        if (code(e) !== 'EPERM' && code(e) !== 'EINVAL') throw e;
        problem = { applier: job.applier, rel: job.rel, kind: 'owner', code: code(e), message: (e as Error).message, uid: job.uid, gid: job.gid };
      }
    }
    fs.fchmodSync(fd, job.mode);
    fs.futimesSync(fd, job.atime, job.mtime);
  } catch (e) {
    problem = { applier: job.applier, rel: job.rel, kind: 'error', code: code(e), message: (e as Error).message, uid: job.uid, gid: job.gid };
  } finally {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch (e) {
        problem ??= { applier: job.applier, rel: job.rel, kind: 'error', code: code(e), message: (e as Error).message, uid: job.uid, gid: job.gid };
      }
    }
  }
  return problem;
}

parentPort!.on('message', (jobs: FileJob[]) => {
  for (const job of jobs) {
    const problem = write(job);
    // The problem is on the port before the count says the job is done.
    if (problem) port.postMessage(problem);
    Atomics.sub(pending, 0, 1);
    Atomics.notify(pending, 0);
  }
});
