/**
 * Typed Dockerfile model: what the front end produces and the build engine
 * consumes.
 *
 *   text --parse--> DockerfileAst (syntax; BuildKit dump-able)
 *        --plan---> BuildPlan (stages, graph, FROM resolved with global ARGs)
 *   during the build, per stage:
 *        StageState + Instruction --dispatch--> ResolvedInstruction (words expanded)
 *
 * Word expansion needs the base image's ENV (BuildKit expands `$PATH` from the
 * base image), so instructions stay unexpanded in the plan and are expanded by
 * `dispatch` as the engine walks the stage.
 */
import type { SourceLocation } from '../errors.js';
import type { ConfigInstruction } from '../image/config.js';

// ---------------------------------------------------------------- syntax ----

export interface AstHeredoc {
  /** Delimiter name, without quotes or `-`. */
  name: string;
  /** Body, with the trailing newline kept as BuildKit keeps it. */
  content: string;
  /** Expand variables in the body (delimiter was not quoted). */
  expand: boolean;
  /** `<<-`: leading tabs stripped. */
  chomp: boolean;
  /** `3<<EOF`: the file descriptor the body is fed to (RUN), when given. */
  fileDescriptor?: number;
}

/** One instruction as written: keyword, flags and arguments, no meaning yet. */
export interface AstInstruction {
  /** Lower-case keyword: `from`, `run`, `copy`, ... */
  keyword: string;
  /** `--flag=value` strings as written (before expansion). */
  flags: string[];
  /**
   * Arguments as BuildKit's parser splits them (what its dump prints): JSON
   * array items for exec form, one string for shell form, key/value/sep
   * triples for ENV and LABEL.
   */
  args: string[];
  /** True when the arguments were a JSON array. */
  json: boolean;
  heredocs: AstHeredoc[];
  /** The instruction's text as written (continuations joined), for errors and history. */
  original: string;
  location: SourceLocation;
  /** Last line of the instruction (continuations/heredocs). */
  endLine: number;
  /** The keyword as written (case kept), e.g. `Run`. */
  keywordRaw?: string;
  /** ONBUILD: the trigger instruction (its `args` are then empty). */
  sub?: AstInstruction;
}

export interface ParserDirectives {
  syntax?: string;
  escape: '\\' | '`';
  check?: string;
}

export interface DockerfileAst {
  file: string;
  directives: ParserDirectives;
  instructions: AstInstruction[];
  warnings: Diagnostic[];
}

export interface Diagnostic {
  message: string;
  location?: SourceLocation;
}

// ------------------------------------------------------------------ plan ----

/** A stage's base: nothing, an image reference, or an earlier stage. */
export type StageBase =
  | { kind: 'scratch' }
  | { kind: 'image'; ref: string }
  | { kind: 'stage'; index: number };

/**
 * Instructions inside a stage, typed but with words NOT yet expanded
 * (dispatch expands them). Flags are parsed and validated at plan time.
 */
export type Instruction =
  | { kind: 'arg'; args: { name: string; default?: string }[]; location: SourceLocation; original: string }
  | { kind: 'env'; pairs: { key: string; value: string }[]; location: SourceLocation; original: string }
  | { kind: 'label'; pairs: { key: string; value: string }[]; location: SourceLocation; original: string }
  | { kind: 'expose'; ports: string[]; location: SourceLocation; original: string }
  | { kind: 'workdir'; path: string; location: SourceLocation; original: string }
  | { kind: 'user'; user: string; location: SourceLocation; original: string }
  | { kind: 'volume'; paths: string[]; location: SourceLocation; original: string }
  | { kind: 'stopsignal'; signal: string; location: SourceLocation; original: string }
  | { kind: 'maintainer'; name: string; location: SourceLocation; original: string }
  | { kind: 'onbuild'; trigger: string; location: SourceLocation; original: string }
  | { kind: 'shell'; shell: string[]; location: SourceLocation; original: string }
  | { kind: 'cmd' | 'entrypoint'; args: string[]; shellForm: boolean; location: SourceLocation; original: string }
  | { kind: 'healthcheck'; none: boolean; test?: string[]; shellForm?: boolean; options: HealthOptions; location: SourceLocation; original: string }
  | { kind: 'run'; args: string[]; shellForm: boolean; heredocs: AstHeredoc[]; mounts: string[]; network?: string; security?: string; location: SourceLocation; original: string }
  | ({ kind: 'copy' | 'add' } & CopyFields & { location: SourceLocation; original: string });

export interface HealthOptions {
  interval?: string;
  timeout?: string;
  startPeriod?: string;
  startInterval?: string;
  retries?: string;
}

export interface CopyFields {
  /** Sources then destination are split off: `sources` are unexpanded words. */
  sources: string[];
  dest: string;
  /** Heredoc sources (`COPY <<EOF /file`). */
  heredocs: AstHeredoc[];
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  checksum?: string;
  keepGitDir: boolean;
  /** ADD --unpack=true|false when given. */
  unpack?: boolean;
}

export interface Stage {
  index: number;
  /** `AS name`, lower-cased as BuildKit does. */
  name?: string;
  /** FROM argument after expansion with global ARGs. */
  baseName: string;
  base: StageBase;
  /** `--platform` after expansion, if given. */
  platform?: string;
  location: SourceLocation;
  instructions: Instruction[];
  /** Stage indexes this stage needs (base, COPY --from, RUN --mount from). */
  dependsOn: number[];
  /** The file's escape token (parser directive), for expanding this stage's words. */
  escape?: '\\' | '`';
  /** The FROM line as written. */
  original?: string;
}

export interface BuildPlan {
  file: string;
  stages: Stage[];
  /** Index of the stage that is built (last, or `--target`). */
  target: number;
  /** Stage indexes the target needs, in an order where each comes after its dependencies. */
  order: number[];
  /** Global ARGs (before the first FROM) with their values after --build-arg. */
  globalArgs: Record<string, string | undefined>;
  warnings: Diagnostic[];
  /** The file's escape token. */
  escape?: '\\' | '`';
  /** Parser directives (`syntax`, `escape`, `check`). */
  directives?: ParserDirectives;
}

export interface PlanOptions {
  /** File name used in errors (default `Dockerfile`). */
  file?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  /** Target platform, e.g. `linux/amd64` (default: this machine). */
  platform?: string;
}

// -------------------------------------------------------------- dispatch ----

/**
 * What a stage knows while it is being built: the image config's env (from
 * the base image, then ENV), the ARGs in scope, and the shell/workdir.
 */
export interface StageState {
  /** Image ENV, in order, `KEY=value`. */
  env: string[];
  /**
   * ARGs declared in this stage (and their value). For expansion and RUN,
   * an ENV set after an ARG shadows it, and an ARG given a value after an
   * ENV (including the base image's) shadows that ENV, as in BuildKit.
   */
  args: Map<string, string | undefined>;
  shell: string[];
  workdir: string;
  user: string;
  escape: '\\' | '`';
  /** `--build-arg` values (consulted by ARG). */
  buildArgs?: Record<string, string>;
  /** Global ARG values and automatic platform ARGs (inherited by a bare `ARG NAME`). */
  globalArgs?: Record<string, string | undefined>;
  /** ARGs in declaration order with their resolved value, for RUN's history line. */
  declaredArgs?: { name: string; value?: string }[];
  /** Names whose latest definition is an ARG with a value (it then shadows the ENV). */
  argShadowsEnv?: Set<string>;
}

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type MountSharing = 'shared' | 'private' | 'locked';

/** One parsed `RUN --mount` (BuildKit's defaults applied, values expanded). */
export interface RunMountSpec {
  type: MountType;
  /** Stage name/index or image (bind, cache). */
  from?: string;
  source?: string;
  target?: string;
  readOnly: boolean;
  /** Cache id, or secret/ssh id. */
  id?: string;
  sharing?: MountSharing;
  required?: boolean;
  /** tmpfs size in bytes. */
  sizeLimit?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Secret exposed as this environment variable. */
  env?: string;
}

/**
 * A file BuildKit materializes for a RUN (a heredoc script starting with
 * `#!` is mounted read-only at /dev/pipes/<name> and executed).
 */
export interface InlineFile {
  path: string;
  content: string;
  mode: number;
}

/**
 * An instruction with every word expanded: what the engine applies. The
 * metadata kinds are the image side's {@link ConfigInstruction} (lib/image/config
 * owns their effect on the config); the rest make layers or change the stage.
 */
export type ResolvedInstruction =
  | ConfigInstruction
  | { kind: 'arg'; args: { name: string; value?: string }[] }
  | { kind: 'run'; args: string[]; env: string[]; mounts: string[]; network?: string; security?: string; heredocs: AstHeredoc[]; parsedMounts?: RunMountSpec[]; inlineFiles?: InlineFile[] }
  | ({ kind: 'copy' | 'add' } & CopyFields);

export interface Dispatched {
  resolved: ResolvedInstruction;
  location: SourceLocation;
  /** History `created_by`, BuildKit style (e.g. `COPY app /app # buildkit`). */
  createdBy: string;
  /** BuildKit writes no history entry for this instruction (ONBUILD). */
  noHistory?: boolean;
}
