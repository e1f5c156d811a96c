/**
 * The OCI runtime config (config.json) of one RUN step, as a pure function
 * of what the step needs. Written from the OCI runtime spec (config.md,
 * config-linux.md); the mount set, device list and capability set follow
 * what `runc spec` and Docker/BuildKit use by default for a build step.
 *
 * Choices, and why:
 * - `terminal: false`: output is piped to the build's progress.
 * - no rlimits: the defaults of `runc spec` fail where the caller's hard
 *   limit is lower (CI containers, this machine).
 * - network: `default` and `host` share the host's network namespace (a RUN
 *   can reach a local Gitea or a package mirror); `none` gets a new one,
 *   where runc brings up only loopback.
 * - /etc/hosts, /etc/resolv.conf, /etc/hostname are files generated outside
 *   the rootfs and bind-mounted read-only, so a RUN never writes them into
 *   the layer.
 * - `insecure`: all capabilities, no masked or read-only /proc paths, /sys
 *   writable (what `RUN --security=insecure` means in BuildKit). The engine
 *   decides whether a step may ask for it.
 */
import type { RunUser } from './user.js';

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'permitted', string[]>;
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    namespaces: { type: string }[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
  };
}

export interface RunSpecInput {
  args: string[];
  env: string[];
  cwd: string;
  user: RunUser;
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  /** The rootfs as runc sees it (absolute, or relative to the bundle). */
  rootfs: string;
  hostname: string;
  /** Host paths of the generated files, bind-mounted read-only. */
  etc: { hosts: string; resolvConf: string; hostname: string };
  /**
   * The caller's capability bounding set (bit N = capability N, as
   * /proc/self/status `CapBnd`): runc cannot give a step a capability the
   * caller lacks (it fails with "unable to apply caps"), e.g. inside a
   * container without CAP_SYS_RESOURCE. Undefined: no limit.
   */
  boundingCaps?: bigint;
  /**
   * In a user namespace (rootless): /sys is bound from the host read-only,
   * since sysfs can only be mounted by the owner of the network namespace.
   */
  rootless?: boolean;
  /**
   * Files only this step sees (a `RUN <<EOF` whose body starts with `#!` is
   * run as /dev/pipes/NAME, as BuildKit does): bound read-only, executable,
   * below the step's tmpfs /dev, so they never reach the layer.
   */
  inlineFiles?: { destination: string; source: string }[];
  /** The step's `RUN --mount`s (step-mounts.ts), mounted last, in Dockerfile order. */
  extraMounts?: OciMount[];
}

/** PATH when the image sets none (what Docker and BuildKit use). */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capability set: what build steps (apt, chown, setcap) expect. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Every capability runc 1.1 knows (up to CAP_CHECKPOINT_RESTORE), in kernel order (index = capability number). */
export const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** /proc paths hidden from a sandboxed step (as runc's and Docker's defaults). */
const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The directories and files the spec mounts over: the rootfs must have them (see stubs.ts). */
export const MOUNT_TARGET_DIRS = ['/proc', '/dev', '/sys'];
export const MOUNT_TARGET_FILES = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

/** The config.json of a RUN step. */
export function runtimeSpec(input: RunSpecInput): OciSpec {
  const insecure = input.security === 'insecure';
  const wanted = insecure ? ALL_CAPABILITIES : DEFAULT_CAPABILITIES;
  const limit = input.boundingCaps;
  // ALL_CAPABILITIES is in kernel order: a capability's index is its number.
  const caps = limit === undefined ? wanted : wanted.filter((c) => (limit >> BigInt(ALL_CAPABILITIES.indexOf(c))) & 1n);
  const env = input.env.some((e) => e.startsWith('PATH=')) ? [...input.env] : [DEFAULT_PATH, ...input.env];
  const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (input.network === 'none') namespaces.push({ type: 'network' });
  const user: OciSpec['process']['user'] = { uid: input.user.uid, gid: input.user.gid };
  if (input.user.additionalGids.length) user.additionalGids = [...input.user.additionalGids];
  const bind = (destination: string, source: string): OciMount => ({ destination, type: 'bind', source, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user,
      args: [...input.args],
      env,
      cwd: input.cwd || '/',
      capabilities: { bounding: [...caps], effective: [...caps], permitted: [...caps] },
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      // runc creates the usual device nodes (null, zero, full, random, urandom, tty) in a tmpfs /dev.
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      input.rootless
        ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
        : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: insecure ? ['nosuid', 'noexec', 'nodev'] : ['nosuid', 'noexec', 'nodev', 'ro'] },
      bind('/etc/hosts', input.etc.hosts),
      bind('/etc/resolv.conf', input.etc.resolvConf),
      bind('/etc/hostname', input.etc.hostname),
      ...(input.inlineFiles ?? []).map((f): OciMount => ({ destination: f.destination, type: 'bind', source: f.source, options: ['rbind', 'ro', 'nosuid', 'nodev'] })),
      ...(input.extraMounts ?? []).map((m) => ({ ...m, ...(m.options ? { options: [...m.options] } : {}) })),
    ],
    linux: { namespaces },
  };
  if (!insecure) {
    spec.linux.maskedPaths = [...MASKED_PATHS];
    spec.linux.readonlyPaths = [...READONLY_PATHS];
  }
  return spec;
}
