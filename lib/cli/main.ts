/**
 * The `ocistack` command: dispatch to lib/cli/commands/*, print errors the
 * same way for all of them, and map them to exit codes (1 failure, 2 usage).
 */
import { finishProgress } from './progress-flag.js';
import { isOcistackError } from '../errors.js';
import type { CliCommand, CliIO } from './types.js';
import { commandEntries, commandNames, loadAllCommands } from './commands/index.js';

const VERSION = '0.1.0';

async function topHelp(): Promise<string> {
  const commands = await loadAllCommands();
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: ocistack COMMAND [OPTIONS]',
    '',
    'Build OCI images from Dockerfiles without a daemon, and push them to registries',
    "such as IDPBuilder's Gitea.",
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "ocistack COMMAND --help" for a command\'s options.',
    '',
  ].join('\n');
}

export async function main(argv: string[], io: Partial<CliIO> = {}): Promise<number> {
  const fullIo: CliIO = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    stdin: io.stdin ?? process.stdin,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
    signal: io.signal,
  };
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    fullIo.stdout.write(await topHelp());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    fullIo.stdout.write(`ocistack ${VERSION}\n`);
    return 0;
  }
  const entry = commandEntries.find((c) => c.name === name);
  if (!entry) {
    fullIo.stderr.write(`error: unknown command "${name}"\nhint: commands are ${commandNames.join(', ')}\n`);
    return 2;
  }
  // Only the command being run is imported (start-up time of every invocation).
  return runCommand(await entry.load(), rest, fullIo);
}

/**
 * Run one command: its `--help`, or its `run` with errors printed the same
 * way for every command (`error: WHERE: MESSAGE`, `hint: ...`) and mapped to
 * exit codes. Tests run a command built with their own dependencies through
 * this (lib/cli/commands/stack.ts's `stackCommand`).
 */
export async function runCommand(cmd: CliCommand, rest: string[], fullIo: CliIO): Promise<number> {
  if (rest.includes('--help') || rest.includes('-h')) {
    fullIo.stdout.write(cmd.help.endsWith('\n') ? cmd.help : `${cmd.help}\n`);
    return 0;
  }
  try {
    const code = await cmd.run(rest, fullIo);
    finishProgress(fullIo);
    return code;
  } catch (e) {
    finishProgress(fullIo); // the final progress frame first: the error is never drawn over
    if (isOcistackError(e)) {
      fullIo.stderr.write(`error: ${e.format()}\n`);
      return e.exitCode;
    }
    const msg = e instanceof Error ? e.stack ?? e.message : String(e);
    fullIo.stderr.write(`error: internal error: ${msg}\nhint: this is a bug in ocistack; please report it with the command you ran\n`);
    return 1;
  }
}
