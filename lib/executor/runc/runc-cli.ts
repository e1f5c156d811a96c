/**
 * Driving the runc binary: `runc run` in the foreground with the step's
 * stdio piped, and the cleanup (`kill`, `delete -f`) that must happen on
 * every way out. The state dir (`--root`) is ocistack's own, below the
 * cache dir, so `runc list` there shows exactly our leftovers.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { abortError } from '../../abort.js';
import { runTool } from './tool.js';

export interface RuncContainer {
  runc: string;
  /** runc's state dir (`runc --root`). */
  root: string;
  bundle: string;
  id: string;
}

export interface RunContainerOptions {
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  signal?: AbortSignal;
}

/** How long to wait for a killed container's runc to exit before killing runc itself. */
const KILL_GRACE_MS = 5000;

/**
 * `runc run` the bundle; resolves with the process's exit code (128+N when
 * a signal ended it). On abort the container is killed (SIGKILL) and the
 * promise rejects with ABORTED once runc has exited; the caller still
 * deletes the container.
 */
export function runContainer(c: RuncContainer, opts: RunContainerOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(abortError(opts.signal));
    const child = spawn(c.runc, ['--root', c.root, 'run', '--bundle', c.bundle, c.id], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (b: Buffer) => opts.onOutput?.('stdout', b));
    child.stderr.on('data', (b: Buffer) => opts.onOutput?.('stderr', b));
    let aborted = false;
    let grace: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      aborted = true;
      // `runc kill` fails while the container is still being created; `delete -f` then covers it.
      void runTool(c.runc, ['--root', c.root, 'kill', c.id, 'KILL']).then((r) => {
        if (r.code !== 0) void runTool(c.runc, ['--root', c.root, 'delete', '-f', c.id]);
      });
      grace = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(e);
    });
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (grace) clearTimeout(grace);
      if (aborted) return reject(abortError(opts.signal));
      resolve(code ?? 128 + (sig ? signalNumber(sig) : 0));
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[sig] ?? 0;
}

/** Remove the container whatever state it is in; a missing one is fine. */
export async function deleteContainer(c: RuncContainer): Promise<void> {
  await runTool(c.runc, ['--root', c.root, 'delete', '-f', c.id]).catch(() => undefined);
}
