/**
 * Error construction for the Dockerfile front end: every failure is an
 * OcistackError naming file:line(:column) and carrying a hint.
 */
import { OcistackError, type SourceLocation } from '../errors.js';
import { redactUrlCredentials } from '../redact.js';

/** A syntax or semantic error in a Dockerfile (code `DOCKERFILE_SYNTAX`). */
export function syntaxError(message: string, location: SourceLocation, hint?: string): OcistackError {
  return new OcistackError(message, { code: 'DOCKERFILE_SYNTAX', location, hint });
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate to `word` (case-insensitive), if it is close enough to be a typo. */
export function closest(word: string, candidates: string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  return bestD <= Math.max(1, Math.ceil(w.length / 3)) ? best : undefined;
}

/** The offending instruction text for a message: first line, URL userinfo masked, at most 80 characters. */
export function excerpt(text: string): string {
  const first = redactUrlCredentials(text.trim().split('\n')[0]!);
  return first.length > 80 ? first.slice(0, 77) + '...' : first;
}

/** An error about one instruction: the message names the offending text. */
export function instructionError(message: string, original: string, location: SourceLocation, hint: string): OcistackError {
  return syntaxError(`${message} (in: ${excerpt(original)})`, location, hint);
}
