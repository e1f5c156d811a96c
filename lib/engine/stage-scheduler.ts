/**
 * Runs a build's stages in parallel when they are independent, at most
 * `limit` at once, each waiting for exactly the stages it uses when it uses
 * them (`FROM <stage>`, `COPY --from=<stage>`, `RUN --mount=from=<stage>`):
 * one promise per stage, started on first use.
 *
 * A running stage holds a slot; while it waits for another stage's result
 * it gives the slot back and takes one again after (a stage waiting on one
 * that has no slot would otherwise deadlock the pool). Slots are granted in
 * the order stages asked, and stages are started in the plan's order, so
 * dependencies get slots before what depends on them.
 *
 * The first stage to fail aborts the others through `signal` (their RUN
 * processes are killed, their writes stop and clean up); `run` rejects with
 * that first error only after every started stage has settled, so nothing
 * is left running or half-written when the caller sees it (the rule of
 * lib/concurrency.ts's forEachLimited).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { availableParallelism } from 'node:os';
import { abortError, interruptedError } from '../abort.js';
import { Semaphore } from '../semaphore.js';

/** Stages at once by default: one per core, at least 2 (a stage waiting on a pull or a sleeping RUN leaves its core idle). */
export function defaultStageLimit(): number {
  return Math.max(2, availableParallelism());
}

export interface StageSchedulerOptions<R> {
  /** Stages running at once (at least 1; 1 builds them one after another in the order asked). */
  limit: number;
  /** Build one stage; `index` is the plan's stage index. */
  build: (index: number) => Promise<R>;
  /** The build's signal, if any: aborts every stage. */
  signal?: AbortSignal;
}

interface SlotHolder {
  /** need() calls of this stage waiting now (its slot is given back while > 0). */
  waits: number;
  /** The slot being taken back when the last wait ended. */
  back?: Promise<void>;
}

export class StageScheduler<R> {
  private readonly slots: Semaphore;
  private readonly tasks = new Map<number, Promise<R>>();
  private readonly background: Promise<unknown>[] = [];
  private readonly done = new Map<number, R>();
  private readonly controller = new AbortController();
  private firstError: { error: unknown } | undefined;
  /** The running stage's slot bookkeeping, for need() called from inside it. */
  private readonly current = new AsyncLocalStorage<SlotHolder>();

  constructor(private readonly opts: StageSchedulerOptions<R>) {
    this.slots = new Semaphore(Math.max(1, Math.floor(opts.limit)));
    const outer = opts.signal;
    // Linked for the build's whole life: the blob store keeps this signal for the outputs after the stages.
    const onAbort = () => this.controller.abort(outer!.reason);
    if (outer?.aborted) onAbort();
    else outer?.addEventListener('abort', onAbort, { once: true });
  }

  /** Aborted by the build's signal or by the first failing stage: what every stage's work must use. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Start (if not yet started) and wait for stage `index`, from outside any stage. */
  result(index: number): Promise<R> {
    let t = this.tasks.get(index);
    if (!t) {
      t = this.start(index);
      this.tasks.set(index, t);
    }
    return t;
  }

  /**
   * Stage `index`'s result, started if need be. From inside a running stage
   * its slot is given back while waiting (see the module comment); several
   * waits at once in one stage give back its one slot once.
   */
  async need(index: number): Promise<R> {
    const ready = this.done.get(index);
    if (ready !== undefined) return ready;
    const t = this.result(index);
    const me = this.current.getStore();
    if (!me) return t;
    await me.back; // a slot being taken back after an earlier wait
    if (me.waits++ === 0) this.slots.release();
    try {
      return await t;
    } finally {
      // Taken back even after an abort, so the stage's own release at its end stays balanced.
      if (--me.waits === 0) me.back = this.slots.acquire();
      await me.back;
    }
  }

  /**
   * Work started ahead of the stages that use it (a base image's pull):
   * its failure fails the build at once, and `run` waits for it to settle.
   */
  watch(work: Promise<unknown>): void {
    const t = work.then(
      () => undefined as R,
      (e: unknown) => {
        throw this.fail(e);
      },
    );
    t.catch(() => undefined);
    this.background.push(t);
  }

  /** Build `order` (and whatever those stages start), failing with the first error after every stage has settled. */
  async run(order: number[]): Promise<void> {
    for (const index of order) this.result(index).catch(() => undefined);
    // Stages can start others (need() of a stage not in `order`): wait until no new task appeared.
    let seen = -1;
    while (seen !== this.tasks.size) {
      seen = this.tasks.size;
      await Promise.allSettled([...this.tasks.values(), ...this.background]);
    }
    if (this.firstError) throw this.firstError.error;
  }

  private async start(index: number): Promise<R> {
    try {
      await this.slots.acquire(this.signal);
    } catch (e) {
      throw this.fail(e);
    }
    try {
      if (this.signal.aborted) throw abortError(this.signal);
      const r = await this.current.run({ waits: 0 }, () => this.opts.build(index));
      this.done.set(index, r);
      return r;
    } catch (e) {
      throw this.fail(e);
    } finally {
      this.slots.release();
    }
  }

  /** Keep the first failure; stop everything else. */
  private fail(e: unknown): unknown {
    if (!this.firstError) {
      this.firstError = { error: e };
      if (!this.controller.signal.aborted) this.controller.abort(interruptedError('another stage of the build failed'));
    }
    return e;
  }
}
