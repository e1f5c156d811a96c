/**
 * Image config construction: the empty config of `FROM scratch`, the effect
 * of each instruction on the config (BuildKit's rules), and history entries.
 * Pure functions over plain JSON; no I/O.
 *
 * This module is the one owner of what an instruction does to the config.
 * It takes {@link ConfigInstruction}, a narrow type defined here (words
 * already expanded), so the image side knows nothing of the Dockerfile
 * front end: lib/dockerfile builds its resolved instructions out of it and
 * data flows one way (dockerfile -> plan -> steps -> layers + config).
 */
import type { ContainerConfig, Digest, HealthConfig, HistoryEntry, ImageConfig, Platform } from './types.js';
import { getEnv, setEnv } from './env.js';

export { getEnv, setEnv };

/** PATH Docker and BuildKit give a Linux image that has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The config of `FROM scratch`: BuildKit's empty image, PATH set. */
export function emptyImageConfig(platform: Platform): ImageConfig {
  const cfg: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: [`PATH=${DEFAULT_PATH}`] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  if (platform.variant) cfg.variant = platform.variant;
  return cfg;
}

/** A deep copy, so a stage never mutates its base's config. */
export function cloneConfig(cfg: ImageConfig): ImageConfig {
  return JSON.parse(JSON.stringify(cfg)) as ImageConfig;
}

/** `env` with BuildKit's default PATH added when it has none (a copy). */
export function withDefaultPath(env: readonly string[] | undefined | null): string[] {
  const out = [...(env ?? [])];
  if (getEnv(out, 'PATH') === undefined) out.push(`PATH=${DEFAULT_PATH}`);
  return out;
}

/**
 * An instruction's effect on the config, words expanded: the metadata
 * instructions. (lib/dockerfile's ResolvedInstruction is this plus the
 * instructions that make layers or only change the build's state.)
 */
export type ConfigInstruction =
  | { kind: 'env'; pairs: [string, string][] }
  | { kind: 'label'; pairs: [string, string][] }
  | { kind: 'expose'; ports: string[] }
  | { kind: 'workdir'; path: string }
  | { kind: 'user'; user: string }
  | { kind: 'volume'; paths: string[] }
  | { kind: 'stopsignal'; signal: string }
  | { kind: 'maintainer'; name: string }
  | { kind: 'onbuild'; trigger: string }
  | { kind: 'shell'; shell: string[] }
  | { kind: 'cmd'; cmd: string[] }
  | { kind: 'entrypoint'; entrypoint: string[] }
  | { kind: 'healthcheck'; healthcheck: HealthConfig };

/** Instructions that leave the config alone (ARG, and COPY/ADD/RUN whose effect is a layer). */
export interface NonConfigInstruction {
  kind: 'arg' | 'copy' | 'add' | 'run';
}

/** Per-stage flags that change how later instructions apply. */
export interface ApplyState {
  /** CMD was set in this stage: a later ENTRYPOINT keeps it. */
  cmdSet: boolean;
}

/**
 * Apply one metadata instruction to the container config. Returns false for
 * instructions that do not change the config (copy, add, run, arg).
 */
export function applyInstruction(cfg: ImageConfig, r: ConfigInstruction | NonConfigInstruction, st: ApplyState): boolean {
  const c: ContainerConfig = (cfg.config ??= {});
  switch (r.kind) {
    case 'env':
      c.Env ??= [];
      for (const [k, v] of r.pairs) setEnv(c.Env, k, v);
      return true;
    case 'label':
      c.Labels ??= {};
      for (const [k, v] of r.pairs) c.Labels[k] = v;
      return true;
    case 'expose':
      c.ExposedPorts ??= {};
      for (const p of r.ports) c.ExposedPorts[p] = {};
      return true;
    case 'workdir':
      c.WorkingDir = r.path;
      return true;
    case 'user':
      c.User = r.user;
      return true;
    case 'volume':
      c.Volumes ??= {};
      for (const p of r.paths) c.Volumes[p] = {};
      return true;
    case 'stopsignal':
      c.StopSignal = r.signal;
      return true;
    case 'maintainer':
      cfg.author = r.name;
      return true;
    case 'onbuild':
      c.OnBuild = [...(c.OnBuild ?? []), r.trigger];
      return true;
    case 'shell':
      c.Shell = r.shell;
      return true;
    case 'cmd':
      c.Cmd = r.cmd;
      st.cmdSet = true;
      return true;
    case 'entrypoint':
      c.Entrypoint = r.entrypoint;
      // BuildKit: an ENTRYPOINT drops the CMD inherited from the base image
      // unless this stage set CMD before it.
      if (!st.cmdSet) c.Cmd = null;
      return true;
    case 'healthcheck':
      c.Healthcheck = r.healthcheck;
      return true;
    case 'arg':
    case 'copy':
    case 'add':
    case 'run':
      return false;
  }
}

export function addHistory(cfg: ImageConfig, entry: HistoryEntry): void {
  (cfg.history ??= []).push(entry);
}

export function addLayer(cfg: ImageConfig, diffId: Digest): void {
  cfg.rootfs.diff_ids.push(diffId);
}

/**
 * The config as stored: fixed key order (so the same build gives the same
 * bytes), empty collections dropped like BuildKit does.
 */
export function finalizeConfig(cfg: ImageConfig, created: string): ImageConfig {
  const c = cfg.config ?? {};
  const config: ContainerConfig = {};
  const order: (keyof ContainerConfig)[] = [
    'User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels',
    'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell',
  ];
  for (const k of order) {
    const v = c[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0 && k !== 'Healthcheck') continue;
    if (Array.isArray(v) && v.length === 0 && (k === 'OnBuild' || k === 'Env')) continue;
    (config as Record<string, unknown>)[k] = v;
  }
  const out: ImageConfig = {
    created,
    ...(cfg.author ? { author: cfg.author } : {}),
    architecture: cfg.architecture,
    os: cfg.os,
    ...(cfg['os.version'] ? { 'os.version': cfg['os.version'] } : {}),
    ...(cfg.variant ? { variant: cfg.variant } : {}),
    config,
    rootfs: { type: 'layers', diff_ids: [...cfg.rootfs.diff_ids] },
    history: cfg.history ?? [],
  };
  return out;
}
