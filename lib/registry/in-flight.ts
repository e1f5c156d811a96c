/**
 * One transfer of a blob at a time per key (store + digest for pulls,
 * registry + digest for pushes), within this process. Builds running at once
 * (the images of a stack, lib/stack/batch.ts) often pull the same base
 * layers, and push them to the same registry, at the same moment: the later
 * caller waits for the earlier transfer and then does its own cheap check
 * (the blob is in the store; the registry has it or can mount it) instead of
 * moving the same bytes again. A failed or aborted transfer only makes the
 * waiter try for itself.
 */
import { abortError } from '../abort.js';

/** Resolve when `p` settles (either way), or reject at once when `signal` aborts. */
function settledOrAborted(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  const settled = p.then(() => undefined, () => undefined);
  if (!signal) return settled;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    void settled.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

export class InFlight {
  private readonly running = new Map<string, Promise<void>>();

  /** Run `fn` once no other run for `key` is in flight (looked at again after each wait). */
  async run(key: string, signal: AbortSignal | undefined, fn: () => Promise<void>): Promise<void> {
    for (let r = this.running.get(key); r; r = this.running.get(key)) await settledOrAborted(r, signal);
    const p = fn();
    this.running.set(key, p);
    try {
      await p;
    } finally {
      if (this.running.get(key) === p) this.running.delete(key);
    }
  }
}
