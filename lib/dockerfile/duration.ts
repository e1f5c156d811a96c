/**
 * Go `time.ParseDuration` and `Duration.String`, for HEALTHCHECK options
 * (BuildKit parses them with Go and prints them in history with `%v`).
 */

const UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Nanoseconds for a Go duration string like `1m30s`; throws Error with Go's message on bad input. */
export function parseGoDuration(s: string): number {
  const orig = s;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new Error(`time: invalid duration "${orig}"`);
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(\.([0-9]*))?/.exec(s)!;
    if (m[1] === '' && (m[3] === undefined || m[3] === '')) throw new Error(`time: invalid duration "${orig}"`);
    s = s.slice(m[0].length);
    const u = /^[^0-9.]+/.exec(s);
    if (!u) throw new Error(`time: missing unit in duration "${orig}"`);
    const unit = UNITS[u[0]];
    if (unit === undefined) throw new Error(`time: unknown unit "${u[0]}" in duration "${orig}"`);
    s = s.slice(u[0].length);
    const whole = m[1] === '' ? 0 : Number(m[1]);
    const frac = m[3] ? Number('0.' + m[3]) : 0;
    total += whole * unit + Math.floor(frac * unit);
  }
  if (total > 9223372036854775807) throw new Error(`time: invalid duration "${orig}"`);
  return neg ? -total : total;
}

/** Go's `Duration.String()`: `1m30s`, `500ms`, `0s`. */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  let out: string;
  if (u < 1e9) {
    const [unit, div] = u < 1e3 ? ['ns', 1] : u < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    out = trimFrac(u / (div as number)) + unit;
  } else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    const sec = trimFrac(u / 1e9) + 's';
    out = h > 0 ? `${h}h${m}m${sec}` : m > 0 ? `${m}m${sec}` : sec;
  }
  return neg ? '-' + out : out;
}

function trimFrac(n: number): string {
  // at most 9 fractional digits, trailing zeros removed, as Go prints them
  return n.toFixed(9).replace(/\.?0+$/, '');
}
