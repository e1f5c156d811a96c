import { UsageError } from '../errors.js';
import type { ProgressListener } from '../progress/events.js';
import { createRenderer, progressModes, type ProgressMode } from '../progress/render.js';
import { flagString, type ParsedArgs } from './args.js';
import type { CliIO } from './types.js';

/** The renderer `--progress MODE` asks for (default auto), writing to stderr; a bad mode is a usage error. */
export function progressFromFlags(p: ParsedArgs, io: CliIO): ProgressListener {
  const mode = (flagString(p, 'progress') ?? 'auto') as ProgressMode;
  if (!progressModes().includes(mode)) {
    throw new UsageError(`--progress "${mode}" is not a progress mode`, `use one of ${progressModes().join(', ')}`);
  }
  return createRenderer(mode, io.stderr);
}
