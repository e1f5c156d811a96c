import type { BuildSecret } from './secrets.js';
import type { Digest, Descriptor } from '../image/types.js';
import type { Executor } from '../executor/types.js';
import type { ProgressListener } from '../progress/events.js';
import type { RegistryOptions } from '../registry/types.js';
import type { Diagnostic } from '../dockerfile/types.js';

/**
 * Where a finished image goes besides (or instead of) a registry, as
 * buildx's `--output`: `oci` (an OCI layout directory, or an OCI archive
 * when `dest` ends in `.tar`), `docker` (a `docker load` / `kind load
 * image-archive` tarball), `local` (the final file system, unpacked).
 */
export type BuildOutput = { type: 'oci'; dest: string } | { type: 'docker'; dest: string } | { type: 'local'; dest: string };

/**
 * A registry cache (`--cache-to`/`--cache-from type=registry,ref=REF[,mode=max]`):
 * instruction-cache records stored as an ordinary OCI image under REF
 * (docs/cache.md).
 */
export interface RegistryCache {
  type: 'registry';
  /** `host/owner/name:tag`; a cache is written under a tag (cacheTo), read by tag or digest (cacheFrom). */
  ref: string;
  /** `min` (default): the steps of the final image's stages (the target and the stages it is FROM-based on); `max`: every stage's. Export only. */
  mode?: 'min' | 'max';
  /** Export only: a failed export is a warning instead of the build's failure. */
  ignoreError?: boolean;
}

/** One step of a finished build, for `--metadata-file` and reports. */
export interface StepReport {
  id: string;
  stage?: string;
  /** As shown in progress: `[stage] INSTRUCTION ...` (credentials redacted). */
  name: string;
  /** Reused from the instruction cache: nothing ran. */
  cached: boolean;
  durationMs: number;
}

export interface BuildOptions {
  /** Build context directory. */
  context: string;
  /** Dockerfile path (default `<context>/Dockerfile`); relative paths are taken from the process cwd. */
  dockerfile?: string;
  /** Dockerfile text, for embedders that have no file; `dockerfile` then only names it in errors. */
  dockerfileText?: string;
  /** Full references (`host/owner/image:tag`). Pushed with `push`; the first names the OCI layout entry. */
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  /** Target platform (default: this machine's linux platform). */
  platform?: string;
  /** Push every tag after a successful build. */
  push?: boolean;
  /** Where to write the image besides a push: one output or several. */
  output?: BuildOutput | BuildOutput[];
  /**
   * Skip TLS verification for the registries of `tags`, `cacheFrom` and
   * `cacheTo` (not for a base image's registry elsewhere). Same as adding
   * their hosts to `registry.insecureRegistries`.
   */
  insecure?: boolean;
  /**
   * TLS, credentials and transfer options for the registries the build talks
   * to. `credentials` (and OCISTACK_USERNAME/PASSWORD) go to the registries of
   * `tags`, `cacheFrom` and `cacheTo` only, never to a base image's; name
   * those in `credentialsByHost`.
   */
  registry?: RegistryOptions;
  /** Blob cache directory (default `$OCISTACK_CACHE_DIR` or `~/.cache/ocistack`). */
  cacheDir?: string;
  /** Clamp every timestamp (layers, config, history) to this time, seconds since epoch. */
  sourceDateEpoch?: number;
  /**
   * Runs RUN steps. Default: the runc executor when `runc` is on `env.PATH`
   * (loaded at the first RUN), else `noExecutor` (a RUN fails with a clear
   * error saying how to install runc). See docs/executors.md.
   */
  executor?: Executor;
  /** Permit `RUN --security=insecure` (BuildKit's `security.insecure` entitlement). Default false. */
  allowInsecure?: boolean;
  /**
   * Build secrets for `RUN --mount=type=secret,id=ID`: `{ file }` or
   * `{ env }` (a variable of `env`), by id. Read only by the steps that
   * mount them; never in a layer, the config, history, progress or errors.
   */
  secrets?: Record<string, BuildSecret>;
  /**
   * SSH agents for `RUN --mount=type=ssh,id=ID` (default id `default`):
   * the path of each agent's Unix socket, by id (the CLI's `--ssh default`
   * is `$SSH_AUTH_SOCK`). Only the steps that mount one can reach it.
   */
  ssh?: Record<string, string>;
  /** Ignore the instruction cache (results are still recorded for the next build). */
  noCache?: boolean;
  /** Ignore the instruction cache for these stages only (by name or index). */
  noCacheFilter?: string[];
  /**
   * Registry caches to read step results from: their records are fetched at
   * the start, a step's layers only when that step misses locally and a
   * cache has its key. A missing or unreachable cache is a warning.
   */
  cacheFrom?: RegistryCache[];
  /**
   * Registry caches to write this build's step results to, after the
   * outputs and the push of the tags. A failed export fails the build
   * (exit 1) unless its `ignoreError` is set.
   */
  cacheTo?: RegistryCache[];
  /**
   * Stages built at once (default: the core count, at least 2). Independent
   * stages the target needs run in parallel; one that uses another
   * (`FROM`, `COPY --from`, `RUN --mount=from=`) waits for exactly that
   * stage. 1 builds them one after another in the plan's order. Layer
   * compression and RUN processes share one CPU budget whatever this is.
   */
  maxParallelStages?: number;
  onProgress?: ProgressListener;
  /** Environment for SOURCE_DATE_EPOCH and registry credentials (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Abort the build (pulls, layer writes, outputs, push): it then fails with
   * an OcistackError of code ABORTED, its temp files are removed, and no
   * output, local tag or registry tag is written after the abort. Also used
   * for registry requests unless `registry.signal` is set.
   */
  signal?: AbortSignal;
}

export interface BuildResult {
  /** Digest of the image manifest (what the registry serves for the tags). */
  manifestDigest: Digest;
  configDigest: Digest;
  manifest: Descriptor;
  layers: Descriptor[];
  tags: string[];
  /** References pushed (empty unless `push`). */
  pushed: string[];
  warnings: Diagnostic[];
  /** Every step in step-id order (the plan's order; parallel stages finish in any order) (empty when none ran). */
  steps: StepReport[];
  /** Bytes of the image's config + layers (compressed, as pushed), as the stack report's `size`. */
  size?: number;
}
