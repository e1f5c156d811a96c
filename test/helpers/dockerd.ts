/**
 * A private Docker daemon for the development-loop benchmark
 * (bench/devloop.ts) and test/docker-load.test.ts: Debian's
 * docker.io dockerd started by hand with its own data root, exec root,
 * pidfile, socket and (empty) config file under a temp dir, so it touches no
 * system daemon's state. No bridge and no iptables rules (builds use the host
 * network, as Buildah's chroot isolation does): the machine's network is left
 * alone. A registry's CA, when given, goes to /etc/docker/certs.d/HOST/ca.crt
 * (the only place dockerd reads registry CAs from) and is removed on stop,
 * as is the trust key dockerd 20.10 writes to /etc/docker/key.json.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Dockerd {
  /** The Debian client (its BuildKit is built in; a newer client on PATH may need buildx). */
  docker: string;
  /** Environment for client commands: DOCKER_HOST, DOCKER_CONFIG, DOCKER_BUILDKIT=1. */
  env: NodeJS.ProcessEnv;
  version: string;
  stop(): Promise<void>;
}

const DEBIAN_DOCKER = '/usr/bin/docker';

/** Install docker.io with apt-get when dockerd is missing (the brief allows it); returns why not when that fails. */
export function ensureDockerInstalled(log: (s: string) => void): string | undefined {
  if (existsSync('/usr/sbin/dockerd') && existsSync(DEBIAN_DOCKER)) return undefined;
  if (process.getuid?.() !== 0) return 'docker.io is not installed and installing it needs root';
  log('installing docker.io (apt-get)...');
  const r = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io'], { encoding: 'utf8' });
  if (r.status !== 0) return `apt-get install docker.io failed: ${(r.stderr || r.stdout).slice(-500)}`;
  return undefined;
}

/** Start dockerd under `dir` (trusting `caFile` for `registryHost` when given); resolves when the API answers. */
export async function startDockerd(dir: string, registryHost?: string, caFile?: string): Promise<Dockerd> {
  const dockerd = '/usr/sbin/dockerd';
  const sock = join(dir, 'docker.sock');
  const config = join(dir, 'daemon.json');
  mkdirSync(join(dir, 'client'), { recursive: true });
  writeFileSync(config, '{}\n');
  const certDir = registryHost && caFile ? join('/etc/docker/certs.d', registryHost) : undefined;
  const hadCertsD = existsSync('/etc/docker/certs.d');
  // dockerd 20.10 writes its trust key there whatever the data root is.
  const hadKey = existsSync('/etc/docker/key.json');
  if (certDir) {
    mkdirSync(certDir, { recursive: true });
    copyFileSync(caFile!, join(certDir, 'ca.crt'));
  }
  const logFile = join(dir, 'dockerd.log');
  const out = openSync(logFile, 'a');
  const args = [
    '--config-file', config,
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'dockerd.pid'),
    '--host', `unix://${sock}`,
    '--bridge', 'none',
    '--iptables=false',
    '--ip6tables=false',
    '--ip-masq=false',
    '--userland-proxy=false',
    '--log-level', 'warn',
  ];
  const child: ChildProcess = spawn(dockerd, args, { stdio: ['ignore', out, out] });
  closeSync(out);
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'client'), DOCKER_BUILDKIT: '1' };
  let exited = false;
  child.on('exit', () => (exited = true));
  /** After dockerd is gone: its managed containerd, mounts left under `dir`, and what it put in /etc/docker. */
  const afterExit = (): void => {
    // dockerd normally stops its managed containerd; kill it if it outlived dockerd.
    const ctrPid = join(dir, 'exec', 'containerd', 'containerd.pid');
    if (existsSync(ctrPid)) {
      const pid = Number.parseInt(readFileSync(ctrPid, 'utf8'), 10);
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Unmount whatever is left under the temp dir (overlay mounts, netns) before it is deleted.
    const mounts = spawnSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).stdout.split('\n').filter((m) => m.startsWith(dir + '/'));
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
    if (certDir) rmSync(certDir, { recursive: true, force: true });
    if (!hadKey) rmSync('/etc/docker/key.json', { force: true });
    // Leave /etc/docker as it was: drop certs.d when this made it and nothing else is in it.
    if (!hadCertsD) {
      try {
        rmdirSync('/etc/docker/certs.d');
      } catch {
        // not empty or gone: leave it
      }
    }
  };
  // Interrupted (Ctrl-C, SIGTERM) or exiting without stop(): stop dockerd
  // synchronously BEFORE the temp-dir cleanup of test/helpers/tools.ts runs
  // (prepended), so its data root is not deleted under a running daemon.
  const stopSync = (): void => {
    if (!exited && child.pid) {
      child.kill('SIGTERM');
      // Wait until it is gone or a zombie (not reaped: the event loop is blocked here), at most 30 s.
      const gone = 'while [ -e /proc/$1 ] && ! grep -q ") Z " /proc/$1/stat; do sleep 0.2; done';
      const r = spawnSync('timeout', ['30', 'sh', '-c', gone, 'sh', String(child.pid)]);
      if (r.status !== 0) child.kill('SIGKILL');
    }
    afterExit();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (sig: NodeJS.Signals): void => {
    stopSync();
    if (process.listenerCount(sig) === 0) process.exit(130);
  };
  process.prependListener('exit', stopSync);
  for (const sig of signals) process.prependOnceListener(sig, onSignal);
  const stop = async (): Promise<void> => {
    process.removeListener('exit', stopSync);
    for (const sig of signals) process.removeListener(sig, onSignal);
    if (!exited) {
      child.kill('SIGTERM');
      const gone = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 30_000);
        child.once('exit', () => (clearTimeout(t), resolve(true)));
      });
      if (!gone) child.kill('SIGKILL');
    }
    afterExit();
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`dockerd exited at start:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    const r = spawnSync(DEBIAN_DOCKER, ['version', '--format', '{{.Server.Version}}'], { env, encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0 && r.stdout.trim()) return { docker: DEBIAN_DOCKER, env, version: r.stdout.trim(), stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not answer within 60 s:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
    await new Promise((r2) => setTimeout(r2, 250));
  }
}
