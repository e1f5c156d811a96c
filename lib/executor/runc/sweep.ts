/**
 * Leftovers of RUN steps whose ocistack process died without cleaning up
 * (kill -9, a crash): a step dir under `<cacheDir>/runc/steps/`, possibly a
 * runc container of the same name (still running its process), and the
 * overlay mounted on the dir's `merged/` (and any `RUN --mount=type=bind,rw`
 * overlay below its `binds/`). Step dirs are named by
 * lib/temp-files.ts's `tempName('step')` (`step-PID-START-HOST-RAND`) and
 * the container id is that name, so the owner's death is judged by the same
 * rule as every other temp file; live owners and other hosts are left alone.
 *
 * Order matters: the container first (it holds the mount busy and may still
 * write into the upper dir), then the mount, then the files. Removing files
 * with the overlay still mounted would be harmless to the snapshot (overlay
 * never writes a lower dir), but it is never done.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempNameIsStale } from '../../temp-files.js';
import { mountPoints, unmountOverlay } from './overlay.js';
import { deleteContainer } from './runc-cli.js';

export interface SweepOptions {
  runc: string;
  /** runc's state dir. */
  stateDir: string;
  /** The steps dir. */
  stepsDir: string;
}

/** Remove dead owners' steps: container, mount, dir. Returns the names removed. */
export async function sweepStaleSteps(opts: SweepOptions): Promise<string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(opts.stepsDir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith('step-')) continue;
    const dir = path.join(opts.stepsDir, name);
    const st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st?.isDirectory() || !tempNameIsStale(name, st.mtimeMs)) continue;
    await deleteContainer({ runc: opts.runc, root: opts.stateDir, bundle: path.join(dir, 'bundle'), id: name });
    // The root overlay (`merged/`) and any `RUN --mount=type=bind,rw` overlay below `binds/`, deepest first.
    const below = (): string[] => mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`)).sort().reverse();
    for (const m of below()) await unmountOverlay(m);
    if (below().length) continue; // still busy: leave it for the next sweep rather than delete under a mount
    fs.rmSync(dir, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
