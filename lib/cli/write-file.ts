import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { removeTemp, sweepStaleTemps, tempName, trackTemp, untrackTemp } from '../temp-files.js';

/**
 * Write a small file so readers see the old content or the new, never half.
 * The temp file beside it is registered (removed if the CLI is interrupted)
 * and named for its owner, so a later write sweeps one left by kill -9.
 */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.tmp`;
  await sweepStaleTemps(dir, (n) => n.startsWith(`${prefix}-`));
  const tmp = path.join(dir, tempName(prefix));
  trackTemp(tmp);
  try {
    await fsp.writeFile(tmp, data);
    await fsp.rename(tmp, file);
    untrackTemp(tmp);
  } catch (e) {
    await removeTemp(tmp);
    throw e;
  }
}
