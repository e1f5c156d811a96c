/**
 * Errors ocistack reports to users. Every failure that reaches the CLI is an
 * {@link OcistackError}: a short message, where it happened (file:line or
 * registry), and a hint that says how to fix it. The CLI prints
 * `error: <where>: <message>` and `hint: <hint>` and exits with `exitCode`.
 */
export interface SourceLocation {
  /** Path of the file as the user named it (e.g. `Dockerfile`). */
  file: string;
  /** 1-based line. */
  line: number;
  /** 1-based column, when known. */
  column?: number;
}

export interface ErrorDetails {
  /** Stable machine-readable code, e.g. `DOCKERFILE_SYNTAX`, `REGISTRY_AUTH`, `TLS`. */
  code: string;
  /** How to fix it, one sentence. */
  hint?: string;
  /** File position the error refers to. */
  location?: SourceLocation;
  /** Registry host (host:port) the error refers to. */
  registry?: string;
  /** 1 for a failed build/push (default), 2 for a usage error. */
  exitCode?: 1 | 2;
  cause?: unknown;
}

export class OcistackError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly location?: SourceLocation;
  readonly registry?: string;
  readonly exitCode: 1 | 2;

  constructor(message: string, details: ErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'OcistackError';
    this.code = details.code;
    this.hint = details.hint;
    this.location = details.location;
    this.registry = details.registry;
    this.exitCode = details.exitCode ?? 1;
  }

  /** `Dockerfile:3:5` or `registry localhost:5000`, or '' when neither is known. */
  get where(): string {
    if (this.location) {
      const { file, line, column } = this.location;
      return column ? `${file}:${line}:${column}` : `${file}:${line}`;
    }
    return this.registry ? `registry ${this.registry}` : '';
  }

  /** The full text the CLI prints (without the `error:` prefix). */
  format(): string {
    const head = this.where ? `${this.where}: ${this.message}` : this.message;
    return this.hint ? `${head}\nhint: ${this.hint}` : head;
  }
}

/** Bad command-line usage: exit code 2. */
export class UsageError extends OcistackError {
  constructor(message: string, hint?: string) {
    super(message, { code: 'USAGE', hint, exitCode: 2 });
    this.name = 'UsageError';
  }
}

export function isOcistackError(e: unknown): e is OcistackError {
  return e instanceof OcistackError;
}
