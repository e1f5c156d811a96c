/** Where runc is, and the error when it is not there. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError } from '../../errors.js';
import type { RunRequest } from '../types.js';

/** The runc binary on `env.PATH`, or undefined. */
export function findRunc(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, 'runc');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** Throw RUNC_MISSING (with how to install runc) when `runc` cannot be run. */
export function checkRunc(runc: string, req: RunRequest): void {
  try {
    fs.accessSync(runc, fs.constants.X_OK);
    return;
  } catch {
    /* below: a bare name is looked up on PATH */
  }
  if (!runc.includes('/') && findRunc()) return;
  throw new OcistackError(`RUN needs runc, and ${runc.includes('/') ? runc + ' is not an executable' : 'it is not on PATH'}`, {
    code: 'RUNC_MISSING',
    location: req.location,
    hint: 'install runc (Debian/Ubuntu: apt-get install runc; Fedora: dnf install runc); COPY-only builds work without it',
  });
}
