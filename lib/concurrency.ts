import pLimit from 'p-limit';
import { abortError } from './abort.js';

/**
 * Run `fn` over `items`, `concurrency` at a time, and fail with the first
 * error only after every task already running has finished: nothing is left
 * writing temp files or talking to a registry once the caller sees the
 * error (Promise.all would return while they run on). Tasks not yet started
 * when one fails are skipped. With `signal`, tasks not yet started when it
 * aborts are skipped too, and the pool fails with an ABORTED error once the
 * running ones have finished.
 */
export async function forEachLimited<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const limit = pLimit(concurrency);
  let failed = false;
  const results = await Promise.allSettled(
    items.map((item) =>
      limit(async () => {
        if (failed || signal?.aborted) return;
        try {
          await fn(item);
        } catch (e) {
          failed = true;
          throw e;
        }
      }),
    ),
  );
  if (signal?.aborted) throw abortError(signal);
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
