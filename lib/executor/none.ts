import { OcistackError } from '../errors.js';
import type { Executor, RunRequest, RunResult } from './types.js';

/** How to get the default executor: named by every "RUN needs runc" error. */
export const INSTALL_RUNC_HINT = 'install runc (Debian/Ubuntu: "sudo apt-get install runc") so that ocistack finds it on PATH, or select an executor with --executor / build({ executor })';

/** The message of a RUN that has no executor. */
export const NO_EXECUTOR_MESSAGE = 'RUN needs an executor, and none is available (no runc on PATH, or --executor none)';

/**
 * The executor used when no runc is on PATH (or with `--executor none`): any
 * RUN fails with a clear error at its line instead of being skipped. Builds
 * that only COPY never reach it.
 */
export const noExecutor: Executor = {
  name: 'none',
  async run(req: RunRequest): Promise<RunResult> {
    throw new OcistackError(NO_EXECUTOR_MESSAGE, { code: 'NO_EXECUTOR', location: req.location, hint: INSTALL_RUNC_HINT });
  },
};
