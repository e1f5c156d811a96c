/**
 * Live progress for a terminal (`--progress tty`, or `auto` when stderr is
 * one), in the manner of BuildKit's: running steps with a timer, the last
 * lines of their RUN output under them, and per-blob transfer bars stay in
 * a live area at the bottom that is redrawn in place; each finished step
 * (its duration, `CACHED` or `ERROR`), warning and finished blob is printed
 * once above it, so the scrollback reads like a log. The last line is the
 * build's summary.
 *
 * Pure over its inputs: events, a writer, a clock and a timer are given, so
 * tests drive it with fake time. Lines are cut to the terminal width (read
 * at every draw: a resize takes effect at the next frame) and never wrap,
 * since a wrapped line would break the line count the redraw moves up by.
 * Text a program printed is stripped of escape codes for the same reason.
 */
import type { ProgressEvent } from './events.js';
import { formatBytes, formatDuration, formatPlain, formatSummary, printable, shortDigest, stepTitle } from './format.js';

const CSI = '\x1b[';
const HIDE_CURSOR = `${CSI}?25l`;
export const SHOW_CURSOR = `${CSI}?25h`;
/** How often running timers are redrawn. */
export const TICK_MS = 150;
/** Output and blob updates closer together than this wait for the next tick. */
const MIN_REDRAW_MS = 100;

/** The parts of a tty stream the renderer uses. */
export interface TtyLike {
  write(s: string): unknown;
  columns?: number;
}

export interface TtyOptions {
  /** Milliseconds; default Date.now. */
  now?: () => number;
  /** ANSI colours (the caller decides: NO_COLOR, FORCE_COLOR, a terminal). Default off. */
  color?: boolean;
  /** Terminal width, read at every draw; default `out.columns`, else 80. */
  columns?: () => number | undefined;
  /**
   * Calls `fn` every `ms` until the returned function is called: the live
   * timer. Without it nothing is redrawn between events (not a terminal, or
   * a test that calls tick()).
   */
  every?: (ms: number, fn: () => void) => () => void;
  /** RUN output lines shown under a running step (default 6). */
  outputLines?: number;
}

interface LiveStep {
  id: string;
  title: string;
  started: number;
  output: string[];
}

interface LiveBlob {
  action: string;
  digest: string;
  current: number;
  total?: number;
}

/** A real-time `every` for the CLI: an unref'd interval, so it never keeps the process alive. */
export function realTimer(ms: number, fn: () => void): () => void {
  const t = setInterval(fn, ms);
  t.unref();
  return () => clearInterval(t);
}

export class TtyRenderer {
  private readonly now: () => number;
  private readonly color: boolean;
  private readonly columns: () => number | undefined;
  private readonly every?: (ms: number, fn: () => void) => () => void;
  private readonly outputLines: number;
  private readonly steps = new Map<string, LiveStep>();
  private readonly blobs = new Map<string, LiveBlob>();
  /** Lines of the live area now on screen. */
  private drawn = 0;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private stopTimer?: () => void;
  private cursorHidden = false;
  private finished = false;
  private readonly summary: string[] = [];

  constructor(private readonly out: TtyLike, opts: TtyOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.color = opts.color ?? false;
    this.columns = opts.columns ?? (() => out.columns);
    this.every = opts.every;
    this.outputLines = opts.outputLines ?? 6;
  }

  /** The ProgressListener. */
  readonly handle = (e: ProgressEvent): void => {
    if (this.finished) return;
    const commit: string[] = [];
    switch (e.type) {
      case 'step':
        this.onStep(e, commit);
        break;
      case 'output': {
        const step = this.steps.get(e.id);
        if (!step) {
          commit.push(this.fit(formatPlain(e)));
          break;
        }
        step.output.push(printable(e.line));
        if (step.output.length > this.outputLines) step.output.splice(0, step.output.length - this.outputLines);
        if (this.now() - this.lastDraw < MIN_REDRAW_MS) return;
        break;
      }
      case 'blob': {
        const key = `${e.action}:${e.digest}`;
        if (e.done) {
          this.blobs.delete(key);
          commit.push(this.fit(formatPlain(e)));
        } else {
          this.blobs.set(key, { action: e.action, digest: e.digest, current: e.current, total: e.total });
          if (this.now() - this.lastDraw < MIN_REDRAW_MS) return;
        }
        break;
      }
      case 'warning':
        commit.push(this.paint('33', this.fit(formatPlain(e))));
        break;
      case 'build':
        // Held for the final frame: the summary is the last line, after the command's own messages.
        // With the full digest when it fits; the full one is on stdout anyway.
        this.summary.push([...formatSummary(e)].length <= this.width() ? formatSummary(e) : formatSummary({ ...e, digest: `sha256:${shortDigest(e.digest)}` }));
        return;
      default:
        for (const l of formatPlain(e).split('\n')) commit.push(this.fit(printable(l)));
    }
    this.draw(commit);
  };

  /** Redraws the live area (the timer calls it; tests call it after moving their clock). */
  tick(): void {
    if (!this.finished && this.drawn + this.steps.size + this.blobs.size > 0) this.draw([]);
  }

  /**
   * The final frame: steps still running are printed as CANCELED with their
   * time (an error or Ctrl-C stopped the build), the live area is cleared,
   * the timer stopped and the cursor shown again. Safe to call twice.
   */
  finish(): void {
    if (this.finished) return;
    const commit: string[] = [];
    for (const s of this.steps.values()) {
      commit.push(this.paint('33', this.fitRight(`${s.id} ${s.title}`, `CANCELED ${formatDuration(this.now() - s.started)}`)));
    }
    for (const l of this.summary) commit.push(this.paint('32', this.fit(l)));
    this.steps.clear();
    this.blobs.clear();
    this.draw(commit);
    this.finished = true;
    this.stopTimer?.();
    this.stopTimer = undefined;
    if (this.cursorHidden) this.out.write(SHOW_CURSOR);
    this.cursorHidden = false;
  }

  private onStep(e: Extract<ProgressEvent, { type: 'step' }>, commit: string[]): void {
    const title = printable(stepTitle(e)).replace(/\s*\n\s*/g, ' ');
    const live = this.steps.get(e.id);
    if (e.status === 'start') {
      this.steps.set(e.id, { id: e.id, title, started: this.now(), output: [] });
      if (!this.stopTimer && this.every) this.stopTimer = this.every(TICK_MS, () => this.tick());
      return;
    }
    this.steps.delete(e.id);
    const took = formatDuration(e.durationMs ?? (live ? this.now() - live.started : 0));
    // The start's title when the closing event carries no position.
    const left = `${e.id} ${e.index === undefined && live ? live.title : title}`;
    if (e.status === 'cached') commit.push(this.paint('34', this.fitRight(left, 'CACHED')));
    else if (e.status === 'done') commit.push(this.paint('34', this.fitRight(left, took)));
    else {
      commit.push(this.paint('31', this.fitRight(left, `ERROR ${took}`)));
      // What the step printed last explains its failure better than anything else.
      for (const l of live?.output ?? []) commit.push(this.paint('2', this.fit(`  ${l}`)));
      for (const l of (e.error ?? '').split('\n')) if (l.trim()) commit.push(this.paint('31', this.fit(`${e.id} error: ${printable(l)}`)));
    }
  }

  private draw(commit: string[]): void {
    // Up to the top of the live area, clear to the end of the screen, print
    // the finished lines, then the live area again.
    let buf = this.drawn ? `\r${CSI}${this.drawn}A${CSI}J` : '';
    for (const l of commit) buf += `${l}\n`;
    const frame = this.frame();
    if (frame.length && !this.cursorHidden) {
      buf = HIDE_CURSOR + buf;
      this.cursorHidden = true;
    }
    for (const l of frame) buf += `${l}\n`;
    this.drawn = frame.length;
    this.lastDraw = this.now();
    if (buf) this.out.write(buf);
  }

  /** The live area: running steps (timer, output tail), then transfers. */
  private frame(): string[] {
    const lines: string[] = [];
    const t = this.now();
    for (const s of this.steps.values()) {
      lines.push(this.fitRight(`${s.id} ${s.title}`, formatDuration(t - s.started)));
      for (const l of s.output) lines.push(this.paint('2', this.fit(`  ${l}`)));
    }
    for (const b of this.blobs.values()) lines.push(this.blobLine(b));
    return lines;
  }

  private blobLine(b: LiveBlob): string {
    const left = `${b.action} ${shortDigest(b.digest)}`;
    const size = b.total !== undefined ? `${formatBytes(b.current)}/${formatBytes(b.total)}` : formatBytes(b.current);
    const room = this.width() - left.length - size.length - 4;
    if (b.total === undefined || !b.total || room < 5) return this.fitRight(left, size);
    const barWidth = Math.min(30, room);
    const filled = Math.min(barWidth, Math.floor((b.current / b.total) * barWidth));
    const bar = `[${'='.repeat(filled)}${filled < barWidth ? '>' : ''}${' '.repeat(Math.max(0, barWidth - filled - 1))}]`;
    return this.fitRight(`${left} ${bar}`, size);
  }

  /** Usable columns: one less than the terminal's, so the cursor never sits in a pending wrap. */
  private width(): number {
    return Math.max(10, (this.columns() ?? 80) - 1);
  }

  private fit(s: string): string {
    return truncate(s, this.width());
  }

  /** `left` cut to leave room for `right` at the right edge. */
  private fitRight(left: string, right: string): string {
    const w = this.width();
    const r = [...right];
    if (r.length + 2 > w) return truncate(`${left} ${right}`, w);
    const l = truncate(left, w - r.length - 1);
    return `${l}${' '.repeat(w - [...l].length - r.length)}${right}`;
  }

  private paint(code: string, s: string): string {
    return this.color ? `${CSI}${code}m${s}${CSI}0m` : s;
  }
}

/** `s` in at most `width` code points, with `…` where it was cut. */
export function truncate(s: string, width: number): string {
  const cps = [...s];
  return cps.length > width ? `${cps.slice(0, width - 1).join('')}…` : s;
}
