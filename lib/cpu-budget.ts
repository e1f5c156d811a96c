/**
 * One CPU budget for the whole process: the cores (os.availableParallelism)
 * shared by everything that burns CPU outside the JS thread, so that two
 * stages building at once, or a RUN next to a layer being compressed, do
 * not oversubscribe the machine.
 *
 * - lib/layer/parallel-gzip.ts takes one unit per deflate block while it is
 *   in the thread pool. A stream with no block in flight always gets one
 *   (`force`), so every layer write makes progress whatever else holds the
 *   budget; extra blocks wait for a free unit.
 * - A running RUN process (lib/executor/runc/step.ts) counts as one unit
 *   while it runs, taken with `force`: a process never waits for a core
 *   (a RUN may wait on another stage's RUN, e.g. through a shared cache
 *   mount, and must not deadlock on the budget), but compression backs off
 *   while it runs. Rootless, the process and its layer's compression run
 *   in the worker process, whose budget forwards every unit to this one
 *   (lib/executor/runc/worker-cpu.ts).
 *
 * The JS thread itself (tar headers, hashing, the layer capture walk) is
 * not counted: it is one core for the process whatever the budget says.
 * The budget never changes what is written, only when.
 *
 * Size: `os.availableParallelism()`, or `OCISTACK_CPU_BUDGET` (a positive
 * integer) when set, e.g. in a container whose CPU quota is smaller than
 * the cores it sees. Read once, when the module loads.
 */
import { availableParallelism } from 'node:os';
import { Semaphore } from './semaphore.js';

export const cpuBudget = new Semaphore(budgetSize(process.env.OCISTACK_CPU_BUDGET));

function budgetSize(setting: string | undefined): number {
  const n = setting !== undefined && /^\s*\d+\s*$/.test(setting) ? Number(setting) : 0;
  return n >= 1 ? n : Math.max(1, availableParallelism());
}

/** Hold one unit while `fn` runs, without waiting for it (see the module comment). */
export async function occupyCpu<T>(fn: () => Promise<T>): Promise<T> {
  cpuBudget.force();
  try {
    return await fn();
  } finally {
    cpuBudget.release();
  }
}
