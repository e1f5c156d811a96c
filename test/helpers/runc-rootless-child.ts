/**
 * Runs one RUN step through the runc executor in this (non-root) process
 * and prints one JSON line: the result, the output, or the error. argv[2]
 * is JSON: storeRoot, layers, diffIds, cacheDir, args, user, network,
 * abortOnOutput, mounts (a chain source's chain as { layers, diffIds,
 * storeRoot }), secrets (id -> utf-8 value; test values only), ssh.
 */
import { BlobStore } from '../../lib/image/store.js';
import { createRuncExecutor } from '../../lib/executor/runc/index.js';
import { OcistackError } from '../../lib/errors.js';
import { fromJobMounts } from '../../lib/executor/runc/job-mounts.js';
import { BUSYBOX_PATH } from './images.js';

const job = JSON.parse(process.argv[2]!);
let stdout = '';
let stderr = '';
// abortOnOutput: abort the step when its first output arrives (the abort test).
const ac = new AbortController();
try {
  const result = await createRuncExecutor({ runc: job.runc }).run({
    chain: { store: new BlobStore(job.storeRoot), layers: job.layers, diffIds: job.diffIds },
    process: { args: job.args, env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: job.user ?? '' },
    mounts: fromJobMounts(job.mounts ?? []),
    ...(job.ssh ? { ssh: job.ssh } : {}),
    ...(job.secrets ? { secrets: Object.fromEntries(Object.entries(job.secrets as Record<string, string>).map(([k, v]) => [k, Buffer.from(v)])) } : {}),
    network: job.network ?? 'default',
    security: 'sandbox',
    location: { file: 'Dockerfile', line: 5 },
    stepId: '#1',
    cacheDir: job.cacheDir,
    signal: ac.signal,
    onOutput: (s, c) => {
      if (s === 'stdout') stdout += c.toString();
      else stderr += c.toString();
      if (job.abortOnOutput) ac.abort('received SIGINT');
    },
  });
  console.log(JSON.stringify({ result, stdout, stderr }));
} catch (e) {
  const err = e instanceof OcistackError ? { code: e.code, message: e.message, hint: e.hint, location: e.location } : { message: String(e) };
  console.log(JSON.stringify({ error: err, stdout, stderr }));
}
