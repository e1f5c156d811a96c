/**
 * uvu's `suite()`/`test` with hooks that fail loudly. Every test file imports
 * `test` (or `suite`) from here instead of from 'uvu'.
 *
 * Why: uvu 0.5 runs hooks inside a `try { ... } finally { return ... }`, so
 * (checked by experiment with uvu 0.5.6, see test/suite.test.ts):
 *  - a throwing `before` hook is swallowed: no test runs, no message is
 *    printed, and the process exits 0;
 *  - a throwing `after.each` hook is swallowed the same way;
 *  - a throwing `after` hook escapes as an unhandled rejection: the message
 *    is printed but uvu's summary is not.
 *
 * Here uvu only ever sees plain tests:
 *  - `before` hooks run (once) through uvu's `before`, but their error is
 *    caught and every test of the suite then fails with
 *    "before hook failed: <message>";
 *  - `before.each`/`after.each` hooks run inside each test's own handler, so
 *    their error fails that test with the hook's message (an `after.each`
 *    still runs after a failed test, as in uvu);
 *  - `after` hooks run in one last test named "after hooks", so their error
 *    is a failing test with the hook's message. A suite with `after` hooks
 *    therefore counts one test more than it declares.
 * uvu counts each of these as a failed test and exits 1, and scripts/test.sh
 * adds them up like any other failure.
 */
import { suite as uvuSuite } from 'uvu';
import type { Callback, Test } from 'uvu';

type Ctx = Record<string, any>;

/** An error's message with the hook it came from in front. */
function hookError(kind: string, err: unknown): Error {
  const cause = err instanceof Error ? err : new Error(String(err));
  const wrapped = new Error(`${kind} hook failed: ${cause.message}`, { cause });
  // Keep the hook's own stack (it says where the hook threw), under the new message.
  const frames = (cause.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  wrapped.stack = [`Error: ${wrapped.message}`, ...frames].join('\n');
  return wrapped;
}

export function suite<T extends Ctx = Ctx>(title?: string, context?: T): Test<T> {
  const inner = uvuSuite<T>(title, context);
  const before: Callback<T>[] = [];
  const beforeEach: Callback<T>[] = [];
  const afterEach: Callback<T>[] = [];
  const after: Callback<T>[] = [];
  let beforeFailure: Error | undefined;
  let onlyUsed = false;

  // Registered first, so it runs before any test; never throws into uvu.
  inner.before(async (ctx) => {
    for (const hook of before) {
      try {
        await hook(ctx);
      } catch (e) {
        beforeFailure = hookError('before', e);
        return;
      }
    }
  });

  const wrap = (handler: Callback<T>): Callback<T> => async (ctx) => {
    if (beforeFailure) throw beforeFailure;
    let failure: unknown;
    try {
      for (const hook of beforeEach) {
        try {
          await hook(ctx);
        } catch (e) {
          throw hookError('before.each', e);
        }
      }
      await handler(ctx);
    } catch (e) {
      failure = e;
    }
    for (const hook of afterEach) {
      try {
        await hook(ctx);
      } catch (e) {
        const err = hookError('after.each', e);
        // The test's own failure comes first; the hook's is added to it.
        if (failure instanceof Error) failure.message += `\n    and then ${err.message}`;
        else failure = err;
        break;
      }
    }
    if (failure !== undefined) throw failure;
  };

  const runAfterHooks: Callback<T> = async (ctx) => {
    for (const hook of after) {
      try {
        await hook(ctx);
      } catch (e) {
        throw hookError('after', e);
      }
    }
  };

  const test = ((name: string, handler: Callback<T>) => inner(name, wrap(handler))) as Test<T>;
  test.only = (name: string, handler: Callback<T>) => {
    onlyUsed = true;
    inner.only(name, wrap(handler));
  };
  test.skip = (name?: string, handler?: Callback<T>) => inner.skip(name, handler);
  const hookApi = (list: Callback<T>[], each: Callback<T>[]) => {
    const add = ((hook: Callback<T>) => void list.push(hook)) as Test<T>['before'];
    add.each = (hook: Callback<T>) => void each.push(hook);
    return add;
  };
  test.before = hookApi(before, beforeEach);
  test.after = hookApi(after, afterEach);
  test.run = () => {
    if (after.length > 0) (onlyUsed ? inner.only : inner)('after hooks', runAfterHooks);
    inner.run();
  };
  return test;
}

/** The default suite, like uvu's `test`. */
export const test = suite();
