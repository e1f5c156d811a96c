/**
 * Backoff for transient registry failures: network errors, 5xx and 429.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { abortError } from './http.js';
import type { RetryPolicy } from './types.js';

export interface ResolvedRetry {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export function resolveRetry(p: RetryPolicy = {}): ResolvedRetry {
  return { attempts: Math.max(1, p.attempts ?? 6), baseDelayMs: p.baseDelayMs ?? 200, maxDelayMs: p.maxDelayMs ?? 5000 };
}

/** Delay before try number `attempt + 1` (attempt counts from 0), with jitter. */
export function backoffDelay(attempt: number, p: ResolvedRetry): number {
  const exp = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** attempt);
  return Math.round(exp / 2 + (Math.random() * exp) / 2);
}

/** `Retry-After` (seconds or HTTP date) in ms, capped at 30 s; undefined when absent or unparsable. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  let ms: number;
  if (Number.isFinite(secs)) ms = secs * 1000;
  else {
    const t = Date.parse(value);
    if (Number.isNaN(t)) return undefined;
    ms = t - now;
  }
  return Math.min(30_000, Math.max(0, ms));
}

/** Statuses worth another try. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505);
}

/** Wait `ms` before a retry; an aborted `signal` ends the wait with the ABORTED error. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return void (await delay(ms));
  if (signal.aborted) throw abortError(signal);
  try {
    await delay(ms, undefined, { signal });
  } catch (e) {
    if (signal.aborted) throw abortError(signal);
    throw e;
  }
}
