/**
 * Progress events: every long-running operation reports through one callback,
 * and renderers (plain, tty, json) turn them into output. The library never
 * writes to stdout/stderr by itself.
 */
export type ProgressEvent =
  /**
   * A build step. `start` comes first; then exactly one of `done`, `cached`
   * (the instruction cache had its result: nothing ran) or `error`.
   * `index`/`total` place it in its stage (`[stage n/m]`); `durationMs` is
   * set on the closing event.
   */
  | {
      type: 'step';
      id: string;
      stage?: string;
      name: string;
      status: 'start' | 'done' | 'cached' | 'error';
      error?: string;
      index?: number;
      total?: number;
      durationMs?: number;
    }
  | { type: 'log'; id?: string; stream: 'stdout' | 'stderr'; text: string }
  /** One line a RUN step's process printed (no newline), for step `id`. */
  | { type: 'output'; id: string; stream: 'stdout' | 'stderr'; line: string }
  | { type: 'blob'; id: string; action: 'pull' | 'push' | 'mount' | 'exists'; digest: string; total?: number; current: number; done?: boolean }
  | { type: 'warning'; message: string; location?: { file: string; line: number; column?: number } }
  | { type: 'info'; message: string }
  /**
   * The build finished: its manifest digest, how long it took and how many
   * steps ran or came from the cache. The last event of a successful build
   * (a failed one ends with its step's `error`); renderers print their
   * summary line from it. `image` is set when several builds share one
   * renderer (stacks).
   */
  | { type: 'build'; digest: string; durationMs: number; steps: number; cached: number; image?: string };

export type ProgressListener = (event: ProgressEvent) => void;

/** A listener that drops everything: the default for library calls. */
export const silent: ProgressListener = () => {};
