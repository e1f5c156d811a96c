/**
 * Rootless steps: the step runs in a worker process (worker.ts) in a new
 * user and mount namespace, where the caller is uid/gid 0 and its
 * subordinate ids from /etc/subuid and /etc/subgid are 1..N. So the
 * snapshot is extracted with real owners (lib/rootfs treats uid 0 in a
 * namespace as privileged), overlay and runc work as for root, and a file a
 * step creates as `USER app` (1000) is 1000 in the layer; on the host it is
 * subuid start + 999. As Buildah does (containers/storage pkg/unshare):
 * create the namespace, map it with the setuid helpers newuidmap and
 * newgidmap, then continue inside.
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { abortError } from '../../abort.js';
import { OcistackError } from '../../errors.js';
import type { LayerResult } from '../../layer/types.js';
import type { RunRequest, RunResult } from '../types.js';
import { readSubIds, type SubIdRange } from './subids.js';
import { runTool } from './tool.js';
import { toJobMounts } from './job-mounts.js';
import type { WorkerJob } from './worker.js';
import { serveCpuBudget, type CpuMessage } from './worker-cpu.js';

function userName(): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    return undefined;
  }
}

function subIdError(req: RunRequest, name: string | undefined, uid: number, what: string): OcistackError {
  const who = name ?? String(uid);
  return new OcistackError(`RUN as a non-root user needs a range of subordinate ids for ${who} in ${what}`, {
    code: 'RUNC_NO_SUBIDS',
    location: req.location,
    hint: `add one (as root): usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${who}; or run ocistack as root`,
  });
}

/** `newuidmap PID 0 UID 1 1 START COUNT` (and the same for gids). */
async function mapIds(pid: number, uid: number, gid: number, subuid: SubIdRange, subgid: SubIdRange, req: RunRequest): Promise<void> {
  for (const [tool, id, range] of [['newuidmap', uid, subuid], ['newgidmap', gid, subgid]] as const) {
    const r = await runTool(tool, [String(pid), '0', String(id), '1', '1', String(range.start), String(range.count)]);
    if (r.code !== 0) {
      throw new OcistackError(`${tool} failed: ${r.stderr.trim() || `exit code ${r.code}`}`, {
        code: 'RUNC_USERNS',
        location: req.location,
        hint: 'install uidmap (Debian/Ubuntu: apt-get install uidmap) and check the ranges in /etc/subuid and /etc/subgid',
      });
    }
  }
}

export async function runRootless(runc: string, req: RunRequest): Promise<RunResult> {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const name = userName();
  const subuid = readSubIds('/etc/subuid', name, uid);
  if (!subuid) throw subIdError(req, name, uid, '/etc/subuid');
  const subgid = readSubIds('/etc/subgid', name, uid);
  if (!subgid) throw subIdError(req, name, uid, '/etc/subgid');
  if (req.signal?.aborted) throw abortError(req.signal);

  const worker = fileURLToPath(new URL('./worker.js', import.meta.url));
  // The shell waits for the mapping before exec'ing node: a program exec'd
  // while its uid is still unmapped loses every capability in the namespace,
  // one exec'd as the mapped uid 0 has them all (chown, reading 000 dirs).
  const wait = 'echo \'{"unshared":true}\'; read go && exec "$0" "$@"';
  const child = spawn('unshare', ['--user', '--mount', '--', '/bin/sh', '-c', wait, process.execPath, worker], { stdio: ['pipe', 'pipe', 'pipe'] });
  const job: WorkerJob = {
    runc,
    storeRoot: req.chain.store.root,
    req: {
      chain: { layers: req.chain.layers, diffIds: req.chain.diffIds },
      process: req.process, mounts: toJobMounts(req.mounts), network: req.network, security: req.security,
      ...(req.ssh ? { ssh: req.ssh } : {}),
      location: req.location, stepId: req.stepId, cacheDir: req.cacheDir, sourceDateEpoch: req.sourceDateEpoch,
      // Over the worker's stdin pipe (never argv): JSON has no Buffer.
      ...(req.secrets ? { secretsB64: Object.fromEntries(Object.entries(req.secrets).map(([k, v]) => [k, v.toString('base64')])) } : {}),
    },
  };
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.on('error', () => undefined); // the worker may be gone before it reads
  return new Promise<RunResult>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    const onAbort = (): void => void child.stdin.write(`${JSON.stringify({ abort: true })}\n`);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    // The worker's RUN process and layer compression take units of this process's CPU budget,
    // as they would in root mode (worker-cpu.ts); whatever it still holds is given back when it exits.
    const cpu = serveCpuBudget((id) => child.stdin.write(`${JSON.stringify({ cpuGrant: id })}\n`));
    let buf = '';
    child.stdout.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as Partial<CpuMessage> & { unshared?: boolean; ready?: boolean; out?: 'stdout' | 'stderr'; b64?: string; progress?: never; result?: { exitCode: number; layer?: LayerResult }; error?: { message: string; code: string; hint?: string; location?: RunRequest['location'] } };
        if (msg.cpu) cpu.handle(msg as CpuMessage);
        else if (msg.unshared) {
          mapIds(child.pid!, uid, gid, subuid, subgid, req).then(
            () => child.stdin.write('go\n'),
            (e: unknown) => {
              child.kill('SIGKILL');
              fail(e);
            },
          );
        } else if (msg.ready) child.stdin.write(`${JSON.stringify(job)}\n`);
        else if (msg.out) req.onOutput?.(msg.out, Buffer.from(msg.b64 ?? '', 'base64'));
        else if (msg.progress) req.onProgress?.(msg.progress);
        else if (msg.result) {
          settled = true;
          resolve(msg.result);
        } else if (msg.error) {
          const { message, code, hint, location } = msg.error;
          fail(code === 'ABORTED' ? abortError(req.signal) : new OcistackError(message, { code, hint, location }));
        }
      }
    });
    child.on('error', (e) => fail(new OcistackError(`could not start the rootless step (unshare): ${e.message}`, { code: 'RUNC_USERNS', location: req.location, hint: 'install util-linux (unshare) and uidmap' })));
    child.on('close', (code) => {
      cpu.close();
      req.signal?.removeEventListener('abort', onAbort);
      child.stdin.destroy();
      // Interrupted: the worker's own error (if any) is beside the point, and a signal may have ended it.
      if (req.signal?.aborted) return fail(abortError(req.signal));
      fail(new OcistackError(`the rootless step worker exited (${code}) without a result: ${stderr.trim().split('\n').slice(-3).join(' / ')}`, {
        code: 'RUNC_USERNS',
        location: req.location,
        hint: 'check that user namespaces are enabled (sysctl user.max_user_namespaces) and newuidmap/newgidmap work for this user',
      }));
    });
  });
}
