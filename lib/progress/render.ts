/**
 * Progress renderers: turn ProgressEvents into text for a terminal or a log.
 *
 * - `tty`: the live view (tty.ts);
 * - `plain`: one line per event with durations, for CI logs (like BuildKit's
 *   --progress=plain);
 * - `json`: one JSON object per line in the documented, versioned shape (json.ts);
 * - `rawjson`: one JSON object per line, the event as the library sent it;
 * - `auto`: `tty` when the stream is a terminal, `plain` otherwise;
 * - `quiet`: nothing (errors are the CLI's, and go to stderr regardless).
 *
 * A renderer is a ProgressListener with a `finish()` the caller runs when the
 * operation ended (success, error or Ctrl-C): the tty renderer prints its
 * final frame and shows the cursor again; the others have nothing to do.
 */
import type { ProgressEvent, ProgressListener } from './events.js';
import { formatPlain } from './format.js';
import { jsonLine } from './json.js';
import { realTimer, TtyRenderer } from './tty.js';

export { formatPlain };

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'rawjson' | 'quiet';

export function progressModes(): ProgressMode[] {
  return ['auto', 'tty', 'plain', 'json', 'rawjson', 'quiet'];
}

export type Renderer = ProgressListener & { finish(): void };

export interface RendererOptions {
  /** Colours in tty mode (see colorAllowed); default: colorAllowed(process.env, stream is a TTY). */
  color?: boolean;
  /** Milliseconds; default Date.now. */
  now?: () => number;
  /** The live timer; default a real interval when the stream is a TTY, none otherwise. */
  every?: (ms: number, fn: () => void) => () => void;
}

/**
 * Whether colours may be used: never when NO_COLOR is set and not empty
 * (no-color.org), always when FORCE_COLOR is set to anything but 0/false,
 * else on a terminal that is not `dumb`.
 */
export function colorAllowed(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (env.NO_COLOR) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  return isTTY && env.TERM !== 'dumb';
}

function withFinish(l: ProgressListener, finish: () => void = () => {}): Renderer {
  return Object.assign(l, { finish });
}

export function createRenderer(mode: ProgressMode, out: NodeJS.WritableStream, opts: RendererOptions = {}): Renderer {
  const now = opts.now ?? Date.now;
  const isTTY = (out as { isTTY?: boolean }).isTTY === true;
  switch (mode) {
    case 'rawjson':
      return withFinish((e) => out.write(`${JSON.stringify(e)}\n`));
    case 'json':
      return withFinish((e) => out.write(`${JSON.stringify(jsonLine(e, now()))}\n`));
    case 'quiet':
      return withFinish(() => {});
    case 'auto':
      return createRenderer(isTTY ? 'tty' : 'plain', out, opts);
    case 'tty': {
      const r = new TtyRenderer(out as NodeJS.WriteStream, {
        now,
        color: opts.color ?? colorAllowed(process.env, isTTY),
        every: opts.every ?? (isTTY ? realTimer : undefined),
      });
      return withFinish(r.handle, () => r.finish());
    }
    case 'plain':
      return withFinish(plainRenderer(out));
  }
}

function plainRenderer(out: NodeJS.WritableStream): ProgressListener {
  const lastQuarter = new Map<string, number>();
  return (e: ProgressEvent) => {
    if (e.type === 'blob') {
      // One line at start, every 25%, and at the end: enough to see movement in a log.
      const q = e.total ? Math.floor((e.current / e.total) * 4) : 0;
      const key = `${e.action}:${e.digest}`;
      if (!e.done && lastQuarter.get(key) === q) return;
      lastQuarter.set(key, q);
    }
    const line = formatPlain(e);
    if (line) out.write(`${line}\n`);
  };
}
