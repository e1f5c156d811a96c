/**
 * Running the cluster's own tools (`kubectl`, `idpbuilder`) to learn where
 * the stack's Gitea is and how to reach it. A missing tool, a cluster that
 * is not there or a tool that hangs is an answer ("not from here"), never a
 * crash: the callers fall back to the next source and record why.
 *
 * The output may hold secrets (a Secret's data, `idpbuilder get secrets`),
 * so stdout goes to the caller only; what is kept for messages is the exit
 * status and the last line of stderr, which kubectl and idpbuilder use for
 * "connection refused" and "not found", never for data.
 */
import { spawn } from 'node:child_process';
import { abortError } from '../abort.js';

export type ClusterCommandResult =
  | { status: 'ok'; stdout: string }
  /** The command is not installed (not on `env.PATH`). */
  | { status: 'missing'; command: string }
  /** It ran and failed (or timed out): `reason` is safe to show. */
  | { status: 'failed'; command: string; reason: string };

export interface ClusterCommandOptions {
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Kill the command after this long (default 15 s: kubectl against a dead API server can hang). */
  timeoutMs?: number;
}

/** stdout is capped: a localbuild list or a secret is a few kB. */
const MAX_STDOUT = 4 * 1024 * 1024;

/**
 * The last non-empty line of stderr, shortened: kubectl logs retries first
 * (`E1202 ... connection refused`) and ends with its summary (`The
 * connection to the server localhost:8080 was refused ...`).
 */
function lastLine(text: string): string {
  const line = text.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/**
 * Run `command args` with `env` (its PATH finds the command) and no stdin.
 * Rejects only when `signal` aborts (ABORTED); every other outcome is a result.
 */
export function runClusterCommand(command: string, args: string[], opts: ClusterCommandOptions): Promise<ClusterCommandResult> {
  if (opts.signal?.aborted) return Promise.reject(abortError(opts.signal));
  const name = command.split('/').pop() ?? command;
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (r: ClusterCommandResult | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const child = spawn(command, args, { env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outLen = 0;
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      outLen += d.length;
      if (outLen <= MAX_STDOUT) out.push(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 8192) err += d.toString('utf8');
    });
    const timeoutMs = opts.timeoutMs ?? 15_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done({ status: 'failed', command: name, reason: `${name} did not answer within ${Math.round(timeoutMs / 1000)} s` });
    }, timeoutMs);
    const onAbort = () => {
      child.kill('SIGKILL');
      done(abortError(opts.signal));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') done({ status: 'missing', command: name });
      else done({ status: 'failed', command: name, reason: `${name} cannot run: ${e.code ?? e.message}` });
    });
    child.on('close', (code, signal) => {
      if (code === 0 && outLen <= MAX_STDOUT) {
        done({ status: 'ok', stdout: Buffer.concat(out).toString('utf8') });
        return;
      }
      const why = outLen > MAX_STDOUT ? 'printed more than 4 MiB' : lastLine(err) || (signal ? `killed by ${signal}` : `exit code ${code}`);
      done({ status: 'failed', command: name, reason: why });
    });
  });
}
