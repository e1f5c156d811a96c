/**
 * A child process for the kill -9 test of the runc executor: runs one RUN
 * step (argv[2] is JSON: storeRoot, layers, diffIds, cacheDir, script, and
 * optionally mounts as lib/executor/runc/job-mounts.ts's JobMounts) and
 * prints `started` when the step's output arrives, so the test can kill it
 * mid-step and check that the next step sweeps what it left.
 */
import { BlobStore } from '../../lib/image/store.js';
import { createRuncExecutor } from '../../lib/executor/runc/index.js';
import { fromJobMounts } from '../../lib/executor/runc/job-mounts.js';
import { BUSYBOX_PATH } from './images.js';

const job = JSON.parse(process.argv[2]!);
const store = new BlobStore(job.storeRoot);
await createRuncExecutor().run({
  chain: { store, layers: job.layers, diffIds: job.diffIds },
  process: { args: ['/bin/sh', '-c', job.script], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: '' },
  mounts: fromJobMounts(job.mounts ?? []),
  network: 'default',
  security: 'sandbox',
  location: { file: 'Dockerfile', line: 1 },
  stepId: '#1',
  cacheDir: job.cacheDir,
  onOutput: () => process.stdout.write('started\n'),
});
