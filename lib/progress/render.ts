/**
 * Progress renderers: turn ProgressEvents into text for a terminal or a log.
 * `plain` prints one line per step change (like BuildKit's --progress=plain);
 * `json` prints each event as one JSON line for tools. `auto` is the live
 * tty renderer (tty.ts) when the stream is a terminal, plain otherwise.
 */
import type { ProgressEvent, ProgressListener } from './events.js';
import { createTtyRenderer } from './tty.js';
import { formatPlain } from './format.js';

export { formatPlain };

export type ProgressMode = 'auto' | 'plain' | 'json' | 'quiet';

export function progressModes(): ProgressMode[] {
  return ['auto', 'plain', 'json', 'quiet'];
}

export function createRenderer(mode: ProgressMode, out: NodeJS.WritableStream): ProgressListener {
  switch (mode) {
    case 'json':
      return (e) => out.write(`${JSON.stringify(e)}\n`);
    case 'quiet':
      return (e) => {
        if (e.type === 'warning') out.write(`${formatPlain(e)}\n`);
      };
    case 'auto':
      if ((out as { isTTY?: boolean }).isTTY) return createTtyRenderer(out as NodeJS.WriteStream);
      return createRenderer('plain', out);
    case 'plain': {
      const lastBlobPercent = new Map<string, number>();
      return (e) => {
        if (e.type === 'blob') {
          // One line at start, every 25%, and at the end: enough to see movement in a log.
          const pct = e.total ? Math.floor((e.current / e.total) * 4) : 0;
          const key = `${e.action}:${e.digest}`;
          if (!e.done && lastBlobPercent.get(key) === pct) return;
          lastBlobPercent.set(key, pct);
        }
        const line = formatPlain(e);
        if (line) out.write(`${line}\n`);
      };
    }
  }
}
