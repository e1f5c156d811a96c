/**
 * What a CLI command is. Each command lives in lib/cli/commands/<name>.ts and
 * exports `command: CliCommand`; lib/cli/main.ts dispatches to it. Commands
 * are thin: parse flags with lib/cli/args.ts, call the library, render output.
 */
export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** Working directory relative paths are resolved against. */
  cwd: string;
  /** Aborted on SIGINT/SIGTERM (lib/cli/process.ts); commands pass it to the library. */
  signal?: AbortSignal;
}

export interface CliCommand {
  name: string;
  /** One line for `ocistack --help`. */
  summary: string;
  /** Full `--help` text. */
  help: string;
  /** Returns the exit code: 0 ok, 1 failure, 2 usage. Throw OcistackError/UsageError for errors. */
  run(argv: string[], io: CliIO): Promise<number>;
}
