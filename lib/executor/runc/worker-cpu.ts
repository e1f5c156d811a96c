/**
 * The rootless worker (worker.ts) is a process of its own, but its CPU use
 * (the RUN process, the layer's compression after it) belongs to the build
 * that started it: the worker's budget (lib/cpu-budget.ts) forwards every
 * take and give-back to the build process's budget over the worker's JSON
 * pipe, so a rootless RUN counts exactly as a root one does.
 *
 * Messages, worker -> parent: `{"cpu":"force"}`, `{"cpu":"release"}`,
 * `{"cpu":"acquire","id":N}`, `{"cpu":"cancel","id":N}` (the waiter was
 * aborted); parent -> worker: `{"cpuGrant":N}`. A grant that crosses a
 * cancel is given straight back. The parent gives back whatever the worker
 * still holds when the worker exits, so a killed worker leaks no unit.
 */
import { abortError } from '../../abort.js';
import { cpuBudget } from '../../cpu-budget.js';

export interface CpuMessage {
  cpu: 'force' | 'release' | 'acquire' | 'cancel';
  id?: number;
}

/** Worker side: route this process's budget to the parent. Returns the handler for `cpuGrant` lines. */
export function forwardCpuBudget(send: (msg: CpuMessage) => void): (id: number) => void {
  let next = 0;
  const waiting = new Map<number, () => void>();
  cpuBudget.force = () => send({ cpu: 'force' });
  cpuBudget.release = () => send({ cpu: 'release' });
  cpuBudget.acquire = (signal?: AbortSignal) => {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const id = next++;
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        waiting.delete(id);
        send({ cpu: 'cancel', id });
        reject(abortError(signal));
      };
      waiting.set(id, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      send({ cpu: 'acquire', id });
    });
  };
  return (id) => {
    const grant = waiting.get(id);
    waiting.delete(id);
    if (grant) grant();
    else send({ cpu: 'release' }); // cancelled meanwhile: not ours to keep
  };
}

/** Parent side: serve one worker's budget messages from this process's budget. */
export function serveCpuBudget(grant: (id: number) => void): { handle(msg: CpuMessage): void; close(): void } {
  let held = 0;
  let closed = false;
  const pending = new Map<number, AbortController>();
  return {
    handle(msg) {
      if (closed) return;
      if (msg.cpu === 'force') {
        cpuBudget.force();
        held++;
      } else if (msg.cpu === 'release') {
        if (held === 0) return; // never more than it took
        held--;
        cpuBudget.release();
      } else if (msg.cpu === 'acquire' && msg.id !== undefined) {
        const id = msg.id;
        const ac = new AbortController();
        pending.set(id, ac);
        cpuBudget.acquire(ac.signal).then(
          () => {
            pending.delete(id);
            if (closed) return cpuBudget.release();
            held++;
            grant(id);
          },
          () => pending.delete(id),
        );
      } else if (msg.cpu === 'cancel' && msg.id !== undefined) {
        pending.get(msg.id)?.abort();
      }
    },
    close() {
      closed = true;
      for (const ac of pending.values()) ac.abort();
      for (; held > 0; held--) cpuBudget.release();
    },
  };
}
