/**
 * The runc executor: one RUN step is
 *
 *   snapshot of the chain (lib/rootfs, cached, read-only lower dir)
 *   + stub lower dir with the mount targets the image lacks (stubs.ts)
 *   + per-step upper/work dirs -> overlay mount (overlay.ts)
 *   + generated /etc/hosts, resolv.conf, hostname (etc-files.ts)
 *   + config.json (spec.ts, USER resolved by user.ts)
 *   -> `runc run` (runc-cli.ts), output to onOutput
 *   -> upper dir captured as layer entries (lib/rootfs/capture.ts)
 *   -> writeLayer into the chain's store          (all in step.ts)
 *
 * Everything a step makes lives in one temp dir below the cache dir,
 * registered with lib/temp-files.ts; on every way out (success, failure,
 * abort) the container is deleted, the overlay unmounted and the dir
 * removed. runc's state dir is `<cacheDir>/runc/state`. What a killed
 * process left behind is removed by the next step's sweep (sweep.ts).
 *
 * As root the step runs in this process. As any other user it runs in a
 * worker process in a new user namespace mapped from the caller's
 * /etc/subuid and /etc/subgid ranges (rootless.ts, worker.ts), as root of
 * that namespace, so files keep their real owners.
 */
import type { Executor } from '../types.js';
import { checkRunc, findRunc } from './find-runc.js';
import { runRootless } from './rootless.js';
import { runStepHere } from './step.js';

export { findRunc } from './find-runc.js';
export { boundingCapabilities, CAPTURE_EXCLUDE, runcStateDir, runcStepsDir, STEP_HOSTNAME } from './step.js';

export interface RuncExecutorOptions {
  /** The runc binary (default: runc on PATH). */
  runc?: string;
}

export function createRuncExecutor(opts: RuncExecutorOptions = {}): Executor {
  return {
    name: 'runc',
    run: async (req) => {
      const runc = opts.runc ?? findRunc() ?? 'runc';
      checkRunc(runc, req);
      return process.getuid?.() === 0 ? runStepHere(runc, req, { rootless: false }) : runRootless(runc, req);
    },
  };
}
