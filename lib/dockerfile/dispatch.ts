/**
 * Per-stage evaluation: expands an instruction's words the way BuildKit's
 * dispatchers do (which instructions and which arguments), updates the
 * {@link StageState} (ENV, ARG, WORKDIR, SHELL, USER) and returns the
 * resolved instruction with its BuildKit-style history line.
 */
import path from 'node:path';
import type { ContainerConfig, HealthConfig, ImageConfig } from '../image/types.js';
import type { SourceLocation } from '../errors.js';
import type { Dispatched, InlineFile, Instruction, ResolvedInstruction, RunMountSpec, Stage, StageState } from './types.js';
import { joinMountFields, MountError, parseMount, splitMountFields } from './mounts.js';
import { redactUrlCredentials } from '../redact.js';
import { ShellLex, ShellLexError, type EnvLookup } from './lex.js';
import { instructionError, syntaxError } from './diagnostics.js';
import { goList, goQuoteList } from './gosyntax.js';
import { formatGoDuration, parseGoDuration } from './duration.js';
import { parseExposePort } from './expose.js';
import { platformArgs, PROXY_ARGS } from './platform.js';
import { chompHeredocContent, parseDockerfile, parseHeredoc } from './parser.js';
import { toInstruction } from './instructions.js';

// How ENV keys are found and set, and the default PATH, are the image side's (one definition each).
import { getEnv, setEnv } from '../image/env.js';
import { withDefaultPath } from '../image/config.js';

export interface NewStageStateOptions {
  /** The base image's config (full image config or just its `config` part). */
  baseConfig?: ImageConfig | ContainerConfig;
  /** Base ENV; overrides baseConfig's. */
  baseEnv?: string[];
  workdir?: string;
  user?: string;
  shell?: string[];
  buildArgs?: Record<string, string>;
  /** Global ARGs from the plan. */
  globalArgs?: Record<string, string | undefined>;
  /** Target platform for the automatic platform ARGs (default: this machine). */
  platform?: string;
  escape?: '\\' | '`';
  /** The stage being built (supplies the file's escape token). */
  stage?: Stage;
}

/**
 * Starting state of a stage. Like BuildKit, a PATH is added to the env when
 * the base image has none (the engine should put it in the image config too).
 */
export function newStageState(opts: NewStageStateOptions = {}): StageState {
  const cc: ContainerConfig | undefined = opts.baseConfig
    ? 'config' in opts.baseConfig || 'rootfs' in opts.baseConfig || 'architecture' in opts.baseConfig
      ? (opts.baseConfig as ImageConfig).config ?? undefined
      : (opts.baseConfig as ContainerConfig)
    : undefined;
  const env = withDefaultPath(opts.baseEnv ?? cc?.Env);
  const globalArgs: Record<string, string | undefined> = { ...platformArgs(opts.platform), ...(opts.globalArgs ?? {}) };
  return {
    env,
    args: new Map(),
    shell: [...(opts.shell ?? (cc?.Shell?.length ? cc.Shell : ['/bin/sh', '-c']))],
    workdir: opts.workdir ?? (cc?.WorkingDir || '/'),
    user: opts.user ?? cc?.User ?? '',
    escape: opts.escape ?? opts.stage?.escape ?? '\\',
    buildArgs: { ...(opts.buildArgs ?? {}) },
    globalArgs,
    declaredArgs: [],
    argShadowsEnv: new Set(),
  };
}

/**
 * What words are expanded against: ENV and ARG values, the later definition
 * winning (BuildKit keeps both in one environment, so an ENV after an ARG
 * shadows it and an ARG with a value after an ENV shadows that).
 */
export function expansionEnv(state: StageState): EnvLookup {
  return {
    get: (k) => {
      if (state.argShadowsEnv?.has(k)) {
        const a = state.args.get(k);
        if (a !== undefined) return a;
      }
      const v = getEnv(state.env, k);
      return v !== undefined ? v : state.args.get(k);
    },
  };
}

/**
 * The environment of a RUN: declared ARGs with a value and the image ENV
 * (the later definition of a name wins), plus the predefined proxy ARGs
 * given with --build-arg.
 */
export function runEnv(state: StageState): string[] {
  const out: string[] = [];
  for (const k of PROXY_ARGS) {
    const v = state.buildArgs?.[k];
    if (v !== undefined && !state.args.has(k)) setEnv(out, k, v);
  }
  for (const [k, v] of state.args) if (v !== undefined) setEnv(out, k, v);
  for (const e of state.env) {
    const eq = e.indexOf('=');
    const k = eq < 0 ? e : e.slice(0, eq);
    if (state.argShadowsEnv?.has(k) && state.args.get(k) !== undefined) continue;
    setEnv(out, k, eq < 0 ? '' : e.slice(eq + 1));
  }
  return out;
}

/**
 * Expands and applies one instruction to `state`.
 * @throws OcistackError (`DOCKERFILE_SYNTAX`) naming the instruction's line.
 */
export function dispatch(instr: Instruction, state: StageState): Dispatched {
  const lex = new ShellLex({ escapeToken: state.escape });
  const loc = instr.location;
  const env = expansionEnv(state);
  const word = (w: string) => expandAt(lex, w, env, loc, instr.original);
  const done = (resolved: ResolvedInstruction, createdBy: string, extra: Partial<Dispatched> = {}): Dispatched => ({ resolved, location: loc, createdBy, ...extra });

  switch (instr.kind) {
    case 'arg': {
      const out: { name: string; value?: string }[] = [];
      for (const { name, default: def } of instr.args) {
        const hasBuildArg = state.buildArgs !== undefined && Object.prototype.hasOwnProperty.call(state.buildArgs, name);
        let value: string | undefined;
        if (hasBuildArg) value = state.buildArgs![name];
        else if (def !== undefined) value = expandAt(lex, def, expansionEnv(state), loc, instr.original);
        else if (state.globalArgs && state.globalArgs[name] !== undefined) value = state.globalArgs[name];
        // A bare re-declaration keeps an earlier value (BuildKit never removes it from the environment).
        if (value !== undefined || !state.args.has(name)) state.args.set(name, value);
        if (value !== undefined) (state.argShadowsEnv ??= new Set()).add(name);
        (state.declaredArgs ??= []).push(value === undefined ? { name } : { name, value });
        out.push(value === undefined ? { name } : { name, value });
      }
      return done({ kind: 'arg', args: out }, 'ARG ' + out.map((a) => (a.value === undefined ? a.name : `${a.name}=${a.value}`)).join(' '));
    }
    case 'env': {
      const pairs: [string, string][] = instr.pairs.map((p) => [word(p.key), word(p.value)]);
      for (const [k, v] of pairs) {
        setEnv(state.env, k, v);
        state.argShadowsEnv?.delete(k);
      }
      return done({ kind: 'env', pairs }, 'ENV ' + pairs.map(([k, v]) => `${k}=${v}`).join(' '));
    }
    case 'label': {
      const pairs: [string, string][] = instr.pairs.map((p) => [word(p.key), word(p.value)]);
      return done({ kind: 'label', pairs }, 'LABEL ' + pairs.map(([k, v]) => `${k}=${v}`).join(' '));
    }
    case 'expose': {
      const ports: string[] = [];
      for (const p of instr.ports) {
        let words: string[];
        try {
          words = lex.processWords(p, env);
        } catch (e) {
          throw lexFailure(e, loc, instr.original);
        }
        for (const w of words) {
          try {
            ports.push(...parseExposePort(w));
          } catch (e) {
            throw syntaxError((e as Error).message, loc, 'EXPOSE takes PORT[/PROTO] or a range START-END[/PROTO], PROTO tcp, udp or sctp');
          }
        }
      }
      return done({ kind: 'expose', ports }, `EXPOSE ${goList(ports)}`);
    }
    case 'workdir': {
      const p = word(instr.path);
      const wd = path.posix.isAbsolute(p) ? path.posix.normalize(p) : path.posix.join('/', state.workdir || '/', p);
      state.workdir = wd.length > 1 ? wd.replace(/\/+$/, '') : wd;
      return done({ kind: 'workdir', path: state.workdir }, `WORKDIR ${state.workdir}`);
    }
    case 'user': {
      const u = word(instr.user);
      state.user = u;
      return done({ kind: 'user', user: u }, `USER ${u}`);
    }
    case 'volume': {
      const paths = instr.paths.map(word);
      if (paths.some((p) => p === '')) throw syntaxError('VOLUME specified can not be an empty string', loc, 'check the variables used in VOLUME');
      return done({ kind: 'volume', paths }, `VOLUME ${goList(paths)}`);
    }
    case 'stopsignal': {
      const sig = word(instr.signal);
      if (!isSignal(sig)) throw syntaxError(`Invalid signal: ${sig}`, loc, 'STOPSIGNAL takes a signal name like SIGTERM or a number like 9');
      return done({ kind: 'stopsignal', signal: sig }, `STOPSIGNAL ${sig}`);
    }
    case 'maintainer':
      return done({ kind: 'maintainer', name: instr.name }, `MAINTAINER ${instr.name}`);
    case 'onbuild':
      return done({ kind: 'onbuild', trigger: instr.trigger }, `ONBUILD ${instr.trigger}`, { noHistory: true });
    case 'shell':
      state.shell = [...instr.shell];
      return done({ kind: 'shell', shell: [...instr.shell] }, `SHELL ${goList(instr.shell)}`);
    case 'cmd':
    case 'entrypoint': {
      const args = instr.shellForm && instr.args.length ? [...state.shell, instr.args[0]!] : [...instr.args];
      const upper = instr.kind.toUpperCase();
      const resolved: ResolvedInstruction = instr.kind === 'cmd' ? { kind: 'cmd', cmd: args } : { kind: 'entrypoint', entrypoint: args };
      return done(resolved, `${upper} ${goQuoteList(args)}`);
    }
    case 'healthcheck': {
      const hc = healthConfig(instr);
      return done({ kind: 'healthcheck', healthcheck: hc }, `HEALTHCHECK ${formatHealth(hc)}`);
    }
    case 'run': {
      const parsedMounts: RunMountSpec[] = [];
      const mounts: string[] = [];
      for (const spec of instr.mounts) {
        const fields: string[] = [];
        try {
          parsedMounts.push(parseMount(spec, (v) => word(v)));
          for (const f of splitMountFields(spec)) {
            const eq = f.indexOf('=');
            fields.push(eq < 0 ? f : `${f.slice(0, eq)}=${word(f.slice(eq + 1))}`);
          }
        } catch (e) {
          if (e instanceof MountError) throw instructionError(e.message, instr.original, loc, e.hint);
          throw e;
        }
        mounts.push(joinMountFields(fields));
      }
      const { args: cmdArgs, inlineFiles } = runHeredocArgs(instr);
      const args = instr.shellForm && cmdArgs.length ? [...state.shell, cmdArgs[0]!] : cmdArgs;
      const resolved: ResolvedInstruction = { kind: 'run', args, env: runEnv(state), mounts, parsedMounts, heredocs: instr.heredocs.map((h) => ({ ...h })) };
      if (inlineFiles.length) resolved.inlineFiles = inlineFiles;
      if (instr.network !== undefined) resolved.network = instr.network;
      if (instr.security !== undefined) resolved.security = instr.security;
      return done(resolved, `RUN ${runCommandString(args, state)} # buildkit`);
    }
    case 'copy':
    case 'add': {
      const rawLex = new ShellLex({ skipProcessQuotes: true });
      const heredocs = instr.heredocs.map((h) => ({ ...h, content: h.expand ? expandAt(rawLex, h.content, env, loc, instr.original) : h.content }));
      const resolved: ResolvedInstruction = {
        kind: instr.kind,
        sources: instr.sources.map(word),
        dest: word(instr.dest),
        heredocs,
        link: instr.link,
        parents: instr.parents,
        exclude: [...instr.exclude],
        keepGitDir: instr.keepGitDir,
      };
      if (instr.from !== undefined) resolved.from = instr.from;
      if (instr.chown !== undefined) resolved.chown = word(instr.chown);
      if (instr.chmod !== undefined) resolved.chmod = word(instr.chmod);
      if (instr.checksum !== undefined) resolved.checksum = word(instr.checksum);
      if (instr.unpack !== undefined) resolved.unpack = instr.unpack;
      let msg = instr.kind.toUpperCase();
      if (resolved.parents) msg += ' --parents';
      if (resolved.chown) msg += ` --chown=${resolved.chown}`;
      if (resolved.chmod) msg += ` --chmod=${resolved.chmod}`;
      // History never keeps an ADD URL's user:password (BuildKit's own history does; its provenance masks it).
      for (const s of resolved.sources) msg += ` ${redactUrlCredentials(s)}`;
      for (const h of heredocs) msg += ` <<${h.name}`;
      msg += ` ${resolved.dest}`;
      return done(resolved, `${msg} # buildkit`);
    }
  }
}

function expandAt(lex: ShellLex, w: string, env: EnvLookup, loc: SourceLocation, original = ''): string {
  try {
    return lex.processWord(w, env);
  } catch (e) {
    throw lexFailure(e, loc, original);
  }
}

function lexFailure(e: unknown, loc: SourceLocation, original: string): unknown {
  if (e instanceof ShellLexError) {
    const hint = 'check the ${...} expressions and quotes in this instruction';
    return original ? instructionError(e.message, original, loc, hint) : syntaxError(e.message, loc, hint);
  }
  return e;
}

/**
 * RUN with heredocs, as BuildKit's dispatchRun: `RUN <<EOF` alone runs the
 * body through the shell (or, with `#!`, as a script mounted at
 * /dev/pipes/NAME); anything else is handed to the shell with the bodies
 * appended so the shell's own heredoc support applies.
 */
function runHeredocArgs(instr: Extract<Instruction, { kind: 'run' }>): { args: string[]; inlineFiles: InlineFile[] } {
  if (instr.heredocs.length === 0) return { args: [...instr.args], inlineFiles: [] };
  if (instr.args.length !== 1 || !instr.shellForm) {
    throw syntaxError(`parsing produced an invalid run command: ${goList(instr.args)}`, instr.location, 'heredocs need the shell form of RUN');
  }
  const first = instr.heredocs[0]!;
  if (parseHeredoc(instr.args[0]!)) {
    const data = first.chomp ? chompHeredocContent(first.content) : first.content;
    if (data.startsWith('#!')) {
      const file = path.posix.join('/dev/pipes/', first.name);
      return { args: [file], inlineFiles: [{ path: file, content: data, mode: 0o755 }] };
    }
    return { args: [data], inlineFiles: [] };
  }
  let cmd = instr.args[0]!;
  for (const h of instr.heredocs) cmd += '\n' + h.content + h.name;
  return { args: [cmd], inlineFiles: [] };
}

/** BuildKit's RUN history text: `|N K=V ... cmd` when ARGs are declared. */
function runCommandString(args: string[], state: StageState): string {
  const idx = new Map<string, number>();
  const tmp: string[] = [];
  const env = expansionEnv(state);
  for (const a of state.declaredArgs ?? []) {
    const v = env.get(a.name) ?? a.value ?? '';
    const entry = `${a.name}=${v}`;
    const at = idx.get(a.name);
    if (at !== undefined) tmp[at] = entry;
    else {
      idx.set(a.name, tmp.length);
      tmp.push(entry);
    }
  }
  const prefix = tmp.length ? [`|${tmp.length}`, ...tmp] : [];
  return [...prefix, ...args].join(' ');
}

function healthConfig(instr: Extract<Instruction, { kind: 'healthcheck' }>): HealthConfig {
  if (instr.none) return { Test: ['NONE'] };
  const test = instr.shellForm ? ['CMD-SHELL', ...(instr.test ?? [])] : ['CMD', ...(instr.test ?? [])];
  const o = instr.options;
  const hc: HealthConfig = { Test: test };
  const ns = (v?: string) => (v ? parseGoDuration(v) : 0);
  hc.Interval = ns(o.interval);
  hc.Timeout = ns(o.timeout);
  hc.StartPeriod = ns(o.startPeriod);
  hc.StartInterval = ns(o.startInterval);
  hc.Retries = o.retries ? Number(o.retries) : 0;
  return hc;
}

/** Go's `%+v` of BuildKit's HealthcheckConfig. */
function formatHealth(hc: HealthConfig): string {
  const d = (n?: number) => formatGoDuration(n ?? 0);
  return `{Test:${goList(hc.Test ?? [])} Interval:${d(hc.Interval)} Timeout:${d(hc.Timeout)} StartPeriod:${d(hc.StartPeriod)} StartInterval:${d(hc.StartInterval)} Retries:${hc.Retries ?? 0}}`;
}

const SIGNALS = ['ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT',
  'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ'];

/** Signal names (with or without SIG, RTMIN+n) or numbers, as Docker's ParseSignal accepts. */
function isSignal(s: string): boolean {
  if (/^[0-9]+$/.test(s)) return Number(s) > 0 && Number(s) <= 64;
  const n = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.includes(n)) return true;
  const rt = /^RTMIN(\+([0-9]+))?$|^RTMAX(-([0-9]+))?$/.exec(n);
  return rt !== null && Number(rt[2] ?? rt[4] ?? 0) <= 30;
}

/**
 * Parses a base image's ONBUILD triggers (config `OnBuild`) into instructions
 * the engine runs at the start of a stage built on it. Locations point at
 * the stage's FROM line since the triggers come from the image.
 */
export function parseOnbuildTriggers(triggers: string[], opts: { file?: string; location?: SourceLocation; escape?: '\\' | '`' } = {}): Instruction[] {
  const out: Instruction[] = [];
  for (const t of triggers) {
    const file = opts.file ?? 'ONBUILD';
    const text = opts.escape === '`' ? `# escape=\`\n${t}` : t;
    const ast = parseDockerfile(text, { file });
    for (const node of ast.instructions) {
      const kw = node.keyword.toUpperCase();
      if (kw === 'ONBUILD' || kw === 'FROM' || kw === 'MAINTAINER') {
        throw syntaxError(`${kw} isn't allowed as an ONBUILD trigger`, opts.location ?? node.location, 'rebuild the base image without this trigger');
      }
      const ins = toInstruction(node) as Instruction;
      if (opts.location) ins.location = opts.location;
      out.push(ins);
    }
  }
  return out;
}
