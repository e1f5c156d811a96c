/**
 * One progress event as one plain text line (the `plain` renderer, and the
 * lines the tty renderer prints once a step is finished). Its own module so
 * both renderers use it without importing each other.
 */
import type { ProgressEvent } from './events.js';

export function formatPlain(e: ProgressEvent): string {
  switch (e.type) {
    case 'step':
      return e.status === 'error' ? `${e.id} ERROR ${e.name}: ${e.error ?? ''}` : e.status === 'start' ? `${e.id} ${e.name}` : `${e.id} ${e.status.toUpperCase()}`;
    case 'log':
      return e.text.replace(/\n$/, '');
    case 'output':
      // Like BuildKit's plain progress: the step's id in front of each line.
      return `${e.id} ${e.line}`;
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
