import pLimit from 'p-limit';

/**
 * Run `fn` over `items`, `concurrency` at a time, and fail with the first
 * error only after every task already running has finished: nothing is left
 * writing temp files or talking to a registry once the caller sees the
 * error (Promise.all would return while they run on). Tasks not yet started
 * when one fails are skipped.
 */
export async function forEachLimited<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  const limit = pLimit(concurrency);
  let failed = false;
  const results = await Promise.allSettled(
    items.map((item) =>
      limit(async () => {
        if (failed) return;
        try {
          await fn(item);
        } catch (e) {
          failed = true;
          throw e;
        }
      }),
    ),
  );
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}
