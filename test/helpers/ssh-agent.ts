/**
 * A real OpenSSH agent for `RUN --mount=type=ssh` tests (openssh-client):
 * `ssh-agent -D -a SOCKET` with a fresh ed25519 key added by `ssh-add`,
 * and the host's own `ssh-add` packed for a busybox step: the binary, the
 * libraries `ldd` names and the dynamic loader in one directory, run as
 * `LOADER --library-path DIR DIR/ssh-add -l` (a busybox image has no libc).
 * `ssh-add -l` sends REQUEST_IDENTITIES and prints the agent's answer, the
 * key's fingerprint and comment: proof that a request and its response
 * went through the mounted socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { basename, join } from 'node:path';
import { killDaemon, requireTool, runOk, spawnDaemon } from './tools.js';

export interface TestAgent {
  socket: string;
  /** The key's comment, as `ssh-add -l` prints it. */
  comment: string;
  /** `SHA256:...` of the key. */
  fingerprint: string;
  stop(): Promise<void>;
}

async function waitForSocket(p: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(p)) return;
    if (child.exitCode !== null) throw new Error(`ssh-agent exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`ssh-agent did not create ${p}`);
}

/** Start an agent with its socket at `dir/agent.sock`, as `uid`/`gid` when given (dir must be theirs then). */
export async function startTestAgent(dir: string, as: { uid: number; gid: number } | undefined = undefined, comment = 'ocistack-test-key'): Promise<TestAgent> {
  const agentBin = requireTool('ssh-agent');
  const socket = join(dir, 'agent.sock');
  const key = join(dir, 'id_ed25519');
  const ids = as ? { uid: as.uid, gid: as.gid } : {};
  await runOk(requireTool('ssh-keygen'), ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', key]);
  if (as) for (const f of [key, `${key}.pub`]) fs.chownSync(f, as.uid, as.gid);
  const child = spawnDaemon(agentBin, ['-D', '-a', socket], { stdio: 'ignore', ...ids });
  await waitForSocket(socket, child);
  await new Promise<void>((resolve, reject) => {
    const add = spawn(requireTool('ssh-add'), ['-q', key], { env: { SSH_AUTH_SOCK: socket, PATH: process.env.PATH ?? '' }, stdio: 'ignore', ...ids });
    add.on('error', reject);
    add.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ssh-add exited with ${code}`))));
  });
  const fingerprint = (await runOk(requireTool('ssh-keygen'), ['-l', '-f', `${key}.pub`])).split(' ')[1]!;
  return { socket, comment, fingerprint, stop: () => killDaemon(child) };
}

/**
 * Copy the host's ssh-add with its libraries into `dir`; returns the
 * command line that runs it from where `dir` is mounted (`mountedAt`).
 */
export async function packSshAdd(dir: string, mountedAt: string): Promise<string> {
  const bin = requireTool('ssh-add');
  fs.mkdirSync(dir, { recursive: true });
  const libs = (await runOk('ldd', [bin]))
    .split('\n')
    .map((l) => /(\/\S+) \(0x/.exec(l)?.[1] ?? /=> (\/\S+)/.exec(l)?.[1])
    .filter((p): p is string => !!p);
  let loader = '';
  for (const lib of libs) {
    fs.copyFileSync(lib, join(dir, basename(lib)));
    fs.chmodSync(join(dir, basename(lib)), 0o755);
    if (basename(lib).startsWith('ld-linux')) loader = basename(lib);
  }
  if (!loader) throw new Error(`no dynamic loader in ldd ${bin}`);
  fs.copyFileSync(bin, join(dir, 'ssh-add'));
  fs.chmodSync(join(dir, 'ssh-add'), 0o755);
  return `${mountedAt}/${loader} --library-path ${mountedAt} ${mountedAt}/ssh-add`;
}
