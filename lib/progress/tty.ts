/**
 * Live progress for a terminal (`--progress auto` when stderr is a TTY):
 * running steps and blob transfers stay in a small live area at the bottom
 * that is redrawn in place; each finished step or blob is printed once above
 * it, so the scrollback reads like the plain log. Lines are cut to the
 * terminal width (a wrapped line would break the redraw's line count), and
 * blob byte counts redraw at most every 80 ms.
 */
import type { ProgressEvent, ProgressListener } from './events.js';
import { formatPlain } from './format.js';

const CSI = '\x1b[';
const BLOB_REDRAW_MS = 80;

/** The parts of a tty stream the renderer uses. */
export interface TtyLike {
  write(s: string): unknown;
  columns?: number;
}

export function createTtyRenderer(out: TtyLike, now: () => number = Date.now): ProgressListener {
  const live = new Map<string, string>();
  let drawn = 0;
  let lastDraw = 0;

  const fit = (s: string): string => {
    const width = Math.max(20, (out.columns ?? 80) - 1);
    const line = s.replace(/\s*\n\s*/g, ' ');
    return line.length > width ? `${line.slice(0, width - 1)}…` : line;
  };

  const redraw = (commit: string[]): void => {
    // Up to the top of the live area, clear to the end of the screen, print
    // the finished lines, then the live area again.
    let buf = drawn ? `${CSI}${drawn}A\r${CSI}J` : '';
    for (const l of commit) buf += `${fit(l)}\n`;
    for (const l of live.values()) buf += `${fit(l)}\n`;
    drawn = live.size;
    lastDraw = now();
    out.write(buf);
  };

  return (e: ProgressEvent) => {
    const commit: string[] = [];
    switch (e.type) {
      case 'step': {
        const key = `step:${e.id}`;
        if (e.status === 'start') {
          live.set(key, `${e.id} ${e.name} ...`);
        } else {
          live.delete(key);
          commit.push(e.status === 'error' ? `${e.id} ERROR ${e.name}: ${e.error ?? ''}` : `${e.id} ${e.name} ${e.status.toUpperCase()}`);
        }
        break;
      }
      case 'blob': {
        const key = `blob:${e.action}:${e.digest}`;
        if (e.done) {
          live.delete(key);
          commit.push(formatPlain(e));
        } else {
          live.set(key, formatPlain(e));
          if (now() - lastDraw < BLOB_REDRAW_MS) return;
        }
        break;
      }
      default:
        commit.push(formatPlain(e));
    }
    redraw(commit);
  };
}
