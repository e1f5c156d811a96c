/**
 * Text pieces every renderer shares: a step's title with its position
 * (`[build 2/5] COPY . /app`), durations, byte counts, the summary line, and
 * one progress event as one plain log line (the `plain` renderer). Its own
 * module so the plain and tty renderers use it without importing each other.
 */
import type { ProgressEvent } from './events.js';

type StepEvent = Extract<ProgressEvent, { type: 'step' }>;
type BuildEvent = Extract<ProgressEvent, { type: 'build' }>;

/**
 * The step's title. The engine names steps `[STAGE] INSTRUCTION`; with
 * `index`/`total` the label becomes `[STAGE n/m]` like BuildKit's. Without
 * them (pulls, older callers) the name is shown as it is, after its `#id`.
 */
export function stepTitle(e: Pick<StepEvent, 'name' | 'index' | 'total'>): string {
  if (e.index === undefined || e.total === undefined) return e.name;
  const m = /^\[([^\]]*)\] /.exec(e.name);
  // An unnamed stage is `stage-N`, as BuildKit calls it.
  if (m) return `[${/^\d+$/.test(m[1]!) ? `stage-${m[1]}` : m[1]} ${e.index}/${e.total}] ${e.name.slice(m[0].length)}`;
  return `[${e.index}/${e.total}] ${e.name}`;
}

/** `0.4s`, `12.3s`, `2m05s`: short enough for the right edge of a step line. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s - m * 60)).padStart(2, '0')}s`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)}MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)}GiB`;
}

/** The 12 hex digits a blob is shown by (as docker and BuildKit do). */
export function shortDigest(digest: string): string {
  const i = digest.indexOf(':');
  return digest.slice(i + 1, i + 13);
}

/** `built in 3.2s, 5 steps (3 cached) sha256:…`: the last line of a build. */
export function formatSummary(e: BuildEvent): string {
  const who = e.image !== undefined ? `[${e.image}] ` : '';
  const steps = `${e.steps} ${e.steps === 1 ? 'step' : 'steps'}`;
  return `${who}built in ${formatDuration(e.durationMs)}, ${steps} (${e.cached} cached) ${e.digest}`;
}

/** A control character or escape sequence a program printed: never copied to our output, it would move the cursor. */
const CONTROL = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

/** A line as printable text: tabs become spaces, escape codes and control characters go. */
export function printable(s: string): string {
  return s.replace(/\t/g, '  ').replace(CONTROL, '');
}

export function formatPlain(e: ProgressEvent): string {
  switch (e.type) {
    case 'step': {
      const took = e.durationMs !== undefined ? ` ${formatDuration(e.durationMs)}` : '';
      switch (e.status) {
        case 'start':
          return `${e.id} ${stepTitle(e)}`;
        case 'done':
          return `${e.id} DONE${took}`;
        case 'cached':
          return `${e.id} CACHED`;
        case 'error':
          // The step's title was on its start line, like BuildKit's `#3 ERROR: ...`.
          return `${e.id} ERROR${took}: ${e.error ?? ''}`;
      }
      return '';
    }
    case 'log':
      return e.text.replace(/\n$/, '');
    case 'output':
      // Like BuildKit's plain progress: the step's id in front of each line.
      return `${e.id} ${printable(e.line)}`;
    case 'blob': {
      const size = e.total !== undefined ? `${formatBytes(e.current)}/${formatBytes(e.total)}` : formatBytes(e.current);
      return `${e.action} ${shortDigest(e.digest)} ${e.done ? 'done ' : ''}${size}`;
    }
    case 'warning': {
      const where = e.location ? `${e.location.file}:${e.location.line}: ` : '';
      return `warning: ${where}${e.message}`;
    }
    case 'info':
      return e.message;
    case 'build':
      return formatSummary(e);
  }
}
