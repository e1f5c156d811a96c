import { OcistackError } from '../errors.js';
import type { Executor, RunRequest, RunResult } from './types.js';

/**
 * The executor used when none is configured: any RUN fails with a clear error
 * at its line instead of being skipped. Builds that only COPY never reach it.
 */
export const noExecutor: Executor = {
  name: 'none',
  async run(req: RunRequest): Promise<RunResult> {
    throw new OcistackError('RUN needs an executor, and none is available yet', {
      code: 'NO_EXECUTOR',
      location: req.location,
      hint: 'this version of ocistack builds COPY-only Dockerfiles; the runc executor is coming',
    });
  },
};
