/**
 * Progress renderers: turn ProgressEvents into text for a terminal or a log.
 * `plain` prints one line per step change (like BuildKit's --progress=plain);
 * `json` prints each event as one JSON line for tools. `auto` is the live
 * tty renderer (tty.ts) when the stream is a terminal, plain otherwise.
 */
import type { ProgressEvent, ProgressListener } from './events.js';
import { createTtyRenderer } from './tty.js';

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

export function formatPlain(e: ProgressEvent): string {
  switch (e.type) {
    case 'step':
      return e.status === 'error' ? `${e.id} ERROR ${e.name}: ${e.error ?? ''}` : e.status === 'start' ? `${e.id} ${e.name}` : `${e.id} ${e.status.toUpperCase()}`;
    case 'log':
      return e.text.replace(/\n$/, '');
    case 'blob': {
      const short = e.digest.slice(7, 19);
      const size = e.total !== undefined ? `${fmtBytes(e.current)}/${fmtBytes(e.total)}` : fmtBytes(e.current);
      return `${e.action} ${short} ${e.done ? 'done ' : ''}${size}`;
    }
    case 'warning': {
      const where = e.location ? `${e.location.file}:${e.location.line}: ` : '';
      return `warning: ${where}${e.message}`;
    }
    case 'info':
      return e.message;
  }
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}KiB`;
  return `${(n / 1024 / 1024).toFixed(1)}MiB`;
}
