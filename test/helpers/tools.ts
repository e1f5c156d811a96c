/**
 * Test helpers for external commands: check that a tool is installed, run a
 * command with a timeout, and track long-running child processes so none is
 * left behind when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Commands the integration tests drive. */
export type ToolName =
  | 'skopeo'
  | 'umoci'
  | 'runc'
  | 'buildah'
  | 'docker-registry'
  | 'nginx'
  | 'openssl'
  | 'htpasswd'
  | 'busybox'
  | 'debootstrap'
  | 'tmux';

/** Debian package that provides each tool (for the error hint). */
const PACKAGE_OF: Record<ToolName, string> = {
  skopeo: 'skopeo',
  umoci: 'umoci',
  runc: 'runc',
  buildah: 'buildah',
  'docker-registry': 'docker-registry',
  nginx: 'nginx-light',
  openssl: 'openssl',
  htpasswd: 'apache2-utils',
  busybox: 'busybox-static',
  debootstrap: 'debootstrap',
  tmux: 'tmux',
};

/** Raised when a required command is not installed. Tests must fail on it, never skip. */
export class MissingToolError extends Error {
  constructor(readonly tool: string, readonly pkg: string) {
    super(`required tool "${tool}" is not installed (install it with: apt-get install -y ${pkg}, or run bash scripts/test.sh as root)`);
    this.name = 'MissingToolError';
  }
}

const found = new Map<string, string>();

/**
 * Absolute path of `name` on PATH (plus /usr/sbin and /sbin, where Debian puts
 * runc and nginx), or throws {@link MissingToolError}. In CI a missing tool is
 * a failure, never a silent skip.
 */
export function requireTool(name: ToolName | string): string {
  const cached = found.get(name);
  if (cached) return cached;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  const r = spawnSync('sh', ['-c', 'PATH="$1" command -v "$2"', 'sh', dirs.filter(Boolean).join(':'), name], {
    encoding: 'utf8',
  });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path) {
    throw new MissingToolError(name, PACKAGE_OF[name as ToolName] ?? name);
  }
  found.set(name, path);
  return path;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Kill the command (SIGKILL) after this many ms. Default 120 000. */
  timeoutMs?: number;
  /** Throw when the exit code is not 0 (the error includes stderr). Default false. */
  check?: boolean;
  /** Secrets to replace with *** in error messages (values after `--*creds` are always hidden). */
  redact?: string[];
}

/** The command line as text for error messages, with credentials hidden. */
export function describeCommand(cmd: string, args: string[], redact: string[] = []): string {
  const shown = args.map((a, i) => (i > 0 && /^--(?:[a-z]+-)?creds$/.test(args[i - 1]) ? '***' : a));
  let text = [cmd, ...shown].join(' ');
  for (const secret of redact) if (secret) text = text.split(secret).join('***');
  return text;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; 124 when killed by the timeout, 128+n when killed by signal n. */
  code: number;
  timedOut: boolean;
}

/**
 * Run a command without a shell and collect its output. Never rejects on a
 * non-zero exit unless `check` is set; rejects when the command cannot be
 * started (e.g. ENOENT).
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res: RunResult = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code: timedOut ? 124 : code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1),
        timedOut,
      };
      if (opts.check && res.code !== 0) {
        reject(
          new Error(
            `${describeCommand(cmd, args, opts.redact)} failed with code ${res.code}${timedOut ? ` (timed out after ${timeoutMs} ms)` : ''}:\n${res.stderr || res.stdout}`,
          ),
        );
        return;
      }
      resolve(res);
    });
    child.stdin!.on('error', () => {
      /* the command may exit before reading its input; that is its business */
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Like {@link run} with `check: true`; returns stdout. */
export async function runOk(cmd: string, args: string[], opts: Omit<RunOptions, 'check'> = {}): Promise<string> {
  return (await run(cmd, args, { ...opts, check: true })).stdout;
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };
  return table[sig];
}

// ---------------------------------------------------------------------------
// Long-running children (registry, nginx, token issuer) and temp dirs.

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  // 'exit' handlers must be synchronous: SIGKILL every tracked child and remove temp dirs.
  process.on('exit', cleanupNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupNow();
      process.exit(128 + (signalNumber(sig) ?? 0));
    });
  }
}

function cleanupNow(): void {
  for (const c of children) {
    try {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
  if (!process.env.OCISTACK_KEEP_TMP) {
    for (const d of tempDirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  }
  tempDirs.clear();
}

/**
 * Spawn a long-running daemon that is SIGKILLed when the test process exits
 * (normally, by exception, or by SIGINT/SIGTERM). Output goes to `logFile`
 * handles the caller passes in `opts.stdio`.
 */
export function spawnDaemon(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  hookExit();
  const child = spawn(cmd, args, opts);
  children.add(child);
  child.on('exit', () => children.delete(child));
  // Do not keep the event loop alive just because a daemon runs: uvu ends when tests end.
  child.unref();
  return child;
}

/** Kill a daemon started by {@link spawnDaemon} with `signal` and wait until it is gone. */
export function killDaemon(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      children.delete(child);
      resolve();
      return;
    }
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      children.delete(child);
      resolve();
    });
    child.kill(signal);
  });
}

/**
 * A fresh temp dir under $OCISTACK_TEST_TMP, or os.tmpdir(), removed at
 * process exit (unless OCISTACK_KEEP_TMP is set, for debugging).
 */
export function makeTempDir(prefix: string): string {
  hookExit();
  const base = process.env.OCISTACK_TEST_TMP ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const d = mkdtempSync(join(base, `ocistack-${prefix}-`));
  tempDirs.add(d);
  return d;
}

/** Remove a temp dir now (and forget it). */
export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Readiness polling.

/** One HTTPS GET trusting `caFile`; resolves with status and body, rejects on connection errors. */
export function httpsGet(url: string, caFile: string | undefined, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = mod(
      u,
      { method: 'GET', headers, ca: caFile ? readFileSync(caFile) : undefined, timeout: 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout requesting ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Poll `url` until `ready(status, body)` is true. Fails early when `child`
 * exits, and after `attempts` tries (100 ms apart; default 300 = about 30 s).
 */
export async function waitForHttps(
  url: string,
  caFile: string | undefined,
  ready: (status: number, body: string) => boolean,
  child?: ChildProcess,
  attempts = 300,
): Promise<void> {
  let last = '';
  for (let i = 0; i < attempts; i++) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`process exited (code ${child.exitCode}, signal ${child.signalCode}) before ${url} was ready`);
    }
    try {
      const r = await httpsGet(url, caFile);
      if (ready(r.status, r.body)) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${attempts} attempts (last: ${last})`);
}
