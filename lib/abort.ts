/**
 * Cancellation: one AbortSignal per operation (`BuildOptions.signal`,
 * `RegistryOptions.signal`, `BlobStore`'s `signal`), checked between steps,
 * per chunk in blob and layer writes, and before each task of a
 * concurrency pool. An aborted operation fails with an OcistackError of code
 * `ABORTED`; whatever it had half-written is removed on the way out (see
 * lib/temp-files.ts), and no tag or output is written after the abort.
 */
import { OcistackError } from './errors.js';

export const ABORTED = 'ABORTED';

/** An ABORTED error saying why (e.g. "received SIGINT"). */
export function interruptedError(why: string): OcistackError {
  return new OcistackError(`interrupted: ${why}`, {
    code: ABORTED,
    hint: 'nothing half-written was kept; run the command again to finish it',
  });
}

/** The error an aborted operation fails with (the signal's reason when that already is one). */
export function abortError(signal?: AbortSignal): OcistackError {
  const reason: unknown = signal?.reason;
  if (reason instanceof OcistackError && reason.code === ABORTED) return reason;
  return interruptedError(typeof reason === 'string' ? reason : reason instanceof Error && reason.name !== 'AbortError' ? reason.message : 'the operation was cancelled');
}

/** Throw {@link abortError} when `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** An ABORTED OcistackError, or the AbortError Node's streams throw for a signal. */
export function isAbortError(e: unknown): boolean {
  return (e instanceof OcistackError && e.code === ABORTED) || (e instanceof Error && e.name === 'AbortError');
}

/**
 * Turn a failure caused by the abort (Node's AbortError, a destroyed stream
 * or socket) into {@link abortError}; other failures pass unchanged.
 */
export function asAbortError(e: unknown, signal: AbortSignal | undefined): unknown {
  return signal?.aborted ? abortError(signal) : e instanceof Error && e.name === 'AbortError' ? abortError(signal) : e;
}
