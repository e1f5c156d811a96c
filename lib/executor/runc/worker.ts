/**
 * The rootless step worker: started by rootless.ts as `unshare --user
 * --mount -- node worker.js`, so it runs in a new user and mount namespace.
 * It says `ready`, waits for its parent to map the namespace (newuidmap,
 * newgidmap: it is then uid 0 there, with the caller's subordinate ids as
 * 1..N), reads the job, and runs the step exactly as root mode does
 * (step.ts). Protocol: JSON lines; parent -> worker: the job, then
 * optionally `{"abort":true}`; worker -> parent: `{"ready":true}`, output
 * chunks `{"out":"stdout","b64":...}`, progress events, CPU budget
 * messages (worker-cpu.ts: the worker's RUN process and layer compression
 * take units of the build process's budget), and finally
 * `{"result":...}` or `{"error":{...}}`. Mounts made here vanish with the
 * namespace when the worker exits, whatever happens. SIGINT, SIGTERM and
 * SIGHUP (a terminal's Ctrl-C reaches the whole process group) abort the
 * step like the parent's abort line.
 */
import { createInterface } from 'node:readline';
import { OcistackError } from '../../errors.js';
import { BlobStore } from '../../image/store.js';
import type { RunRequest } from '../types.js';
import { fromJobMounts, type JobMount } from './job-mounts.js';
import { runStepHere } from './step.js';
import { forwardCpuBudget } from './worker-cpu.js';

export interface WorkerJob {
  runc: string;
  storeRoot: string;
  req: Omit<RunRequest, 'chain' | 'mounts' | 'onOutput' | 'onProgress' | 'signal' | 'secrets'> & { chain: Omit<RunRequest['chain'], 'store'>; mounts: JobMount[]; secretsB64?: Record<string, string> };
}

function send(msg: unknown): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

// Every unit this process takes is the build process's (worker-cpu.ts).
const cpuGranted = forwardCpuBudget(send);
const ac = new AbortController();
const lines = createInterface({ input: process.stdin });
let job: WorkerJob | undefined;
let started = false;
lines.on('line', (line) => {
  const msg = JSON.parse(line) as { abort?: boolean; cpuGrant?: number } & Partial<WorkerJob>;
  if (msg.cpuGrant !== undefined) return cpuGranted(msg.cpuGrant);
  if (msg.abort) return ac.abort('received an abort from the parent process');
  if (!started) {
    started = true;
    job = msg as WorkerJob;
    void run(job);
  }
});
// The parent is gone (killed, crashed): stop the step and clean up, as on an abort.
lines.on('close', () => ac.abort('the parent process went away'));
// Ctrl-C in a terminal signals the whole process group, this worker too:
// dying of it (node's default) would leave runc, the step's processes and
// the step dir behind. Stop and clean up as on the parent's abort instead;
// the parent, signalled alike, reports the interruption.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => ac.abort(`received ${sig}`));
send({ ready: true });

async function run(j: WorkerJob): Promise<void> {
  try {
    const { secretsB64, mounts, ...req } = j.req;
    const result = await runStepHere(j.runc, {
      ...req,
      mounts: fromJobMounts(mounts),
      ...(secretsB64 ? { secrets: Object.fromEntries(Object.entries(secretsB64).map(([k, v]) => [k, Buffer.from(v, 'base64')])) } : {}),
      chain: { ...j.req.chain, store: new BlobStore(j.storeRoot) },
      onOutput: (stream, chunk) => send({ out: stream, b64: chunk.toString('base64') }),
      onProgress: (event) => send({ progress: event }),
      signal: ac.signal,
    }, { rootless: true });
    send({ result });
  } catch (e) {
    const err = e instanceof OcistackError ? { message: e.message, code: e.code, hint: e.hint, location: e.location } : { message: e instanceof Error ? e.message : String(e), code: 'RUNC_ROOTLESS_WORKER' };
    send({ error: err });
  }
  lines.close();
}
