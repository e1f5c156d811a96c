import { OcistackError } from '../errors.js';

/** SOURCE_DATE_EPOCH from the environment, validated (reproducible builds spec). */
export function sourceDateEpochFrom(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  return parseEpoch(v, 'SOURCE_DATE_EPOCH');
}

export function parseEpoch(v: string, what: string): number {
  if (!/^\d+$/.test(v.trim())) {
    throw new OcistackError(`${what}="${v}" is not a number of seconds since 1970`, {
      code: 'USAGE', exitCode: 2, hint: 'set it to a Unix time, e.g. $(git log -1 --format=%ct)',
    });
  }
  return Number(v.trim());
}

/** RFC 3339 in UTC without fractional seconds, as BuildKit writes clamped times. */
export function isoTime(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
