/**
 * A counting semaphore with FIFO waiters. `acquire` waits for a free unit;
 * `force` takes one even when none is free (the count may go above the
 * capacity), for work that must not wait (a process already running, the
 * one block a stream needs to make progress). Used by lib/cpu-budget.ts and
 * the engine's stage scheduler.
 */
import { abortError } from './abort.js';

export class Semaphore {
  private used = 0;
  private readonly waiters: { grant: () => void }[] = [];

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`semaphore capacity must be at least 1, got ${capacity}`);
  }

  /** Units taken now (may exceed `capacity` after `force`). */
  get inUse(): number {
    return this.used;
  }

  /** Wait for a unit; an abort while waiting rejects with the ABORTED error and takes nothing. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.used < this.capacity && this.waiters.length === 0) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          this.used++;
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortError(signal));
        // We may have been the head that blocked others.
        this.wake();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Take a unit without waiting. */
  force(): void {
    this.used++;
  }

  release(): void {
    if (this.used <= 0) throw new Error('internal: semaphore released more often than taken');
    this.used--;
    this.wake();
  }

  private wake(): void {
    while (this.used < this.capacity && this.waiters.length > 0) this.waiters.shift()!.grant();
  }
}
