/**
 * `--progress MODE` and `--quiet`/`-q`, shared by the commands that show
 * progress (build, stack build|push, push, pull, copy). Progress goes to
 * stderr; stdout is for results. `--quiet` shows no progress at all (the
 * command still prints its result, e.g. the digest, and errors still go to
 * stderr).
 */
import { UsageError } from '../errors.js';
import { colorAllowed, createRenderer, progressModes, type ProgressMode, type Renderer } from '../progress/render.js';
import { flagBool, flagString, type FlagSpec, type ParsedArgs } from './args.js';
import type { CliIO } from './types.js';

export const progressFlagSpecs: FlagSpec[] = [
  { name: 'progress', type: 'string' },
  { name: 'quiet', short: 'q', type: 'boolean' },
];

export const progressFlagsHelp = `      --progress MODE        auto (tty on a terminal, else plain), tty, plain, json
                             (one versioned JSON object per line), rawjson or quiet
  -q, --quiet                no progress; only the result on stdout (errors still on stderr)`;

/** The renderers a command opened, finished by runCommand (lib/cli/main.ts) however the command ends. */
const open = new WeakMap<CliIO, Renderer[]>();
/** Live terminal renderers of this process, for finishAllProgress. */
const liveTty = new Set<Renderer>();

/**
 * Every live terminal view prints its final frame now: lib/cli/process.ts
 * calls it on Ctrl-C before it writes its own message, which would
 * otherwise land inside the live area and break its redraw.
 */
export function finishAllProgress(): void {
  for (const r of [...liveTty]) r.finish();
}

/**
 * Every renderer opened for `io` prints its final frame (and shows the
 * cursor again): called when the command returned or threw, before its
 * error is printed, so the error is never drawn over.
 */
export function finishProgress(io: CliIO): void {
  for (const r of open.get(io) ?? []) r.finish();
  open.delete(io);
}

/**
 * The renderer the flags ask for (default auto), writing to stderr; a bad
 * mode is a usage error. finishProgress(io) ends it; a process that exits
 * without that (a second Ctrl-C) still gets its cursor back.
 */
export function progressFromFlags(p: ParsedArgs, io: CliIO): Renderer {
  const asked = flagString(p, 'progress') ?? 'auto';
  if (!(progressModes() as string[]).includes(asked)) {
    throw new UsageError(`--progress "${asked}" is not a progress mode`, `use one of ${progressModes().join(', ')}`);
  }
  // `--quiet` wins over any --progress (also one given by an alias or a script's default).
  const mode: ProgressMode = flagBool(p, 'quiet') ? 'quiet' : (asked as ProgressMode);
  const isTTY = (io.stderr as { isTTY?: boolean }).isTTY === true;
  const r = createRenderer(mode, io.stderr, { color: colorAllowed(io.env, isTTY) });
  open.set(io, [...(open.get(io) ?? []), r]);
  if (!isTTY || (mode !== 'tty' && mode !== 'auto')) return r;
  const onExit = () => r.finish();
  process.once('exit', onExit);
  liveTty.add(r);
  const finish = r.finish;
  r.finish = () => {
    process.removeListener('exit', onExit);
    liveTty.delete(r);
    finish();
  };
  return r;
}
