/**
 * Executors by name, for `ocistack build --executor NAME` and for the
 * default: `runc` when a runc binary is on PATH, else {@link noExecutor}
 * (COPY-only builds still work; a RUN says how to install runc).
 *
 * The runc executor is loaded with a dynamic import of a path computed at
 * run time, and only when its first RUN starts: a COPY-only build never
 * loads it, and a build of ocistack without lib/executor/runc still
 * compiles and fails with a clear error at the RUN.
 */
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OcistackError, UsageError } from '../errors.js';
import { noExecutor, INSTALL_RUNC_HINT } from './none.js';
import type { Executor, RunRequest, RunResult } from './types.js';

/** The names `--executor` takes. */
export const EXECUTOR_NAMES = ['none', 'runc'] as const;

/** The module the runc executor lives in, relative to this one. */
const RUNC_MODULE = ['runc', 'index.js'];

/**
 * The executor called `name`, or the default one when `name` is undefined.
 * @throws UsageError for an unknown name; OcistackError `RUNC_MISSING` when
 *   `runc` is asked for and no runc binary is on `env.PATH`.
 */
export async function selectExecutor(name: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Executor> {
  switch (name) {
    case undefined: {
      const runc = await findOnPath('runc', env);
      return runc ? lazyRuncExecutor(runc) : noExecutor;
    }
    case 'none':
      return noExecutor;
    case 'runc': {
      const runc = await findOnPath('runc', env);
      if (!runc) {
        throw new OcistackError('--executor runc: no runc binary on PATH', { code: 'RUNC_MISSING', hint: INSTALL_RUNC_HINT });
      }
      return lazyRuncExecutor(runc);
    }
    default:
      throw new UsageError(`unknown executor "${name}"`, `--executor takes ${EXECUTOR_NAMES.join(' or ')}`);
  }
}

/** The first executable regular file called `bin` in env.PATH's directories. */
export async function findOnPath(bin: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue; // a relative PATH entry would depend on the cwd
    const file = path.join(dir, bin);
    try {
      if (!(await stat(file)).isFile()) continue;
      await access(file, fsConstants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** An executor named runc that loads the real one at its first RUN. */
function lazyRuncExecutor(runc: string): Executor {
  let loaded: Promise<Executor> | undefined;
  return {
    name: 'runc',
    async run(req: RunRequest): Promise<RunResult> {
      loaded ??= loadRuncExecutor(runc);
      return (await loaded).run(req);
    },
  };
}

type RuncModule = { createRuncExecutor?: (opts?: { runc?: string }) => Executor };

function loadRuncExecutor(runc: string): Promise<Executor> {
  return importRuncExecutor(new URL(RUNC_MODULE.join('/'), new URL('./', import.meta.url)).href, runc);
}

/**
 * `createRuncExecutor({ runc })` of the module at `url` (a file: URL).
 * Exported for tests (a missing module, one without the export).
 * @throws OcistackError `EXECUTOR_MISSING` when the module or its export is missing.
 */
export async function importRuncExecutor(url: string, runc: string): Promise<Executor> {
  let mod: RuncModule;
  try {
    mod = (await import(url)) as RuncModule;
  } catch (e) {
    // Only the module itself missing (Node quotes the missing path; the importer's follows "imported from").
    // A missing import inside it is its own bug and is reported as it is.
    const missing = (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(`'${fileURLToPath(url)}'`);
    if (!missing) throw e;
    throw new OcistackError('the runc executor is not part of this ocistack installation', {
      code: 'EXECUTOR_MISSING',
      hint: 'install an ocistack release that includes lib/executor/runc, or pass --executor none for COPY-only builds',
      cause: e,
    });
  }
  if (typeof mod.createRuncExecutor !== 'function') {
    throw new OcistackError('the runc executor module does not export createRuncExecutor', { code: 'EXECUTOR_MISSING' });
  }
  return mod.createRuncExecutor({ runc });
}
