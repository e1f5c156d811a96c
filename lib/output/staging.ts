/**
 * All-or-nothing outputs: each is made under a temp name beside its
 * destination and renamed into place only when complete, so a failed or
 * interrupted build (Ctrl-C, a full disk, an abort) leaves the destination
 * as it was. Temp names carry their owner process (lib/temp-files.ts) and are
 * registered while they exist: an interrupted CLI removes them, and the next
 * write to the same destination sweeps those of a process killed with -9.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { throwIfAborted } from '../abort.js';
import { removeTemp, sweepStaleTemps, tempName, trackTemp, untrackTemp } from '../temp-files.js';

async function stage(dest: string, signal: AbortSignal | undefined, make: (tmp: string) => Promise<void>, place: (tmp: string) => Promise<void>): Promise<void> {
  const parent = path.dirname(dest);
  await fsp.mkdir(parent, { recursive: true });
  const prefix = `.${path.basename(dest)}.tmp`;
  await sweepStaleTemps(parent, (n) => n.startsWith(`${prefix}-`));
  const tmp = path.join(parent, tempName(prefix));
  trackTemp(tmp);
  try {
    await make(tmp);
    throwIfAborted(signal);
    await place(tmp);
    untrackTemp(tmp);
  } catch (e) {
    await removeTemp(tmp);
    throw e;
  }
}

/** Write a file: `make` creates the temp path given; it then replaces `dest` (a file or nothing) by rename. */
export function stageFile(dest: string, signal: AbortSignal | undefined, make: (tmp: string) => Promise<void>): Promise<void> {
  return stage(dest, signal, make, (tmp) => fsp.rename(tmp, dest));
}

/**
 * Write a directory: `make` fills the temp path given (not yet created); it
 * then takes the place of `dest`, which must be missing or an empty
 * directory (checked before the build by lib/engine/output-dest.ts).
 */
export function stageDir(dest: string, signal: AbortSignal | undefined, make: (tmp: string) => Promise<void>): Promise<void> {
  return stage(dest, signal, make, async (tmp) => {
    // rmdir refuses a non-empty directory: what appeared there since the check is never removed.
    await fsp.rmdir(dest).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    await fsp.rename(tmp, dest);
  });
}
