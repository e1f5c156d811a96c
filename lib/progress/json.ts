/**
 * `--progress json`: one JSON object per line in a documented, versioned
 * shape (docs/api.md, "Progress"). Every field is copied by name here, so a
 * field added to the internal events does not change this output until
 * this mapping (and its version, on an incompatible change) says so;
 * `--progress rawjson` prints the internal events as they are.
 */
import type { ProgressEvent } from './events.js';

export const JSON_PROGRESS_VERSION = 1;

/** The v1 line for one event (fields that are not set are left out). */
export function jsonLine(e: ProgressEvent, timeMs: number): Record<string, unknown> {
  const head = { v: JSON_PROGRESS_VERSION, time: new Date(timeMs).toISOString(), type: e.type };
  switch (e.type) {
    case 'step':
      return { ...head, id: e.id, stage: e.stage, name: e.name, index: e.index, total: e.total, status: e.status, durationMs: ms(e.durationMs), error: e.error };
    case 'output':
      return { ...head, id: e.id, stream: e.stream, line: e.line };
    case 'log':
      return { ...head, id: e.id, stream: e.stream, text: e.text };
    case 'blob':
      return { ...head, id: e.id, action: e.action, digest: e.digest, current: e.current, total: e.total, done: e.done ?? false };
    case 'warning':
      return { ...head, message: e.message, file: e.location?.file, line: e.location?.line, column: e.location?.column };
    case 'info':
      return { ...head, message: e.message };
    case 'build':
      return { ...head, image: e.image, digest: e.digest, durationMs: ms(e.durationMs), steps: e.steps, cached: e.cached };
  }
}

/** Whole milliseconds: the engine measures with performance.now(), tools want integers. */
function ms(n: number | undefined): number | undefined {
  return n === undefined ? undefined : Math.round(n);
}
