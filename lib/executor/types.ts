/**
 * RUN executors: the contract between the build engine and whatever runs a
 * RUN step (issue 9).
 *
 * The engine never hands an executor a directory of this machine: it hands
 * it the stage's layer chain (descriptors, diff_ids and the store to read
 * the blobs from), the process, the mounts, the network mode and a cancel
 * signal. The executor returns the exit code and the file system change as
 * a layer already in the store (a tar with whiteouts, written through
 * lib/layer). So a local executor (runc, root or rootless) materialises the
 * chain itself (lib/rootfs snapshots) and captures the change (overlay upper
 * dir, or a comparison); a remote one (a pod in the IDPBuilder Kind cluster)
 * ships the blobs and brings a tar back. Output streams through `onOutput`.
 */
import type { SourceLocation } from '../errors.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor, Digest } from '../image/types.js';
import type { LayerResult } from '../layer/types.js';
import type { ProgressListener } from '../progress/events.js';

/** The stage's file system so far: layers base first, with their diff_ids. */
export interface LayerChain {
  layers: Descriptor[];
  /** Uncompressed digests, aligned with `layers` (the config's rootfs.diff_ids). */
  diffIds: Digest[];
  /** Where the layer blobs are, and where the change layer must be written. */
  store: BlobStore;
}

/** The process of one RUN step. */
export interface RunProcess {
  /** argv; a shell-form RUN is already `[...shell, script]`. */
  args: string[];
  /** `K=V` list: the image's ENV plus the ARGs this step sees. */
  env: string[];
  /** Absolute working directory in the image (the engine has created it). */
  cwd: string;
  /**
   * USER as written in the Dockerfile after expansion (`name`, `uid`,
   * `name:group`, `uid:gid`); empty for root. The executor resolves names
   * against the rootfs' /etc/passwd and /etc/group.
   */
  user: string;
}

/**
 * What a `bind` mount shows, or what seeds a new `cache` dir (`from=`).
 * Never a host directory to mount as is: a chain is blobs in a store (a
 * local executor materialises it, a remote one ships the blobs), the
 * context is a list of selected files (a remote executor packs them into a
 * tar from `root`).
 */
export type RunMountSource =
  | {
      /** A stage or image: its file system, at `path`. */
      kind: 'chain';
      chain: LayerChain;
      /** Absolute path in that file system, symlinks already resolved by the engine ('/' = its root). */
      path: string;
    }
  | {
      /** Files of the build context, .dockerignore applied, below the mount's `source=`. */
      kind: 'context';
      /**
       * Where the engine's machine has them: entry `rel` is the file
       * `root/rel`. Read only the listed entries (the directory also holds
       * ignored files); never mount `root` itself.
       */
      root: string;
      /** The mount's root itself first (`rel` ''), parents before children. */
      entries: ContextMountEntry[];
    };

/** One file of a context mount. Owners are 0:0 in the step, as BuildKit resets a local context's owners. */
export interface ContextMountEntry {
  /** Slash-separated, relative to the mount's root ('' = the root: a directory, or the single file mounted). */
  rel: string;
  type: 'dir' | 'file' | 'symlink';
  /** Permission bits (with setuid/setgid/sticky). */
  mode: number;
  size: number;
  /** Seconds since epoch. */
  mtime: number;
  linkTarget?: string;
}

export interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  target: string;
  /**
   * bind: what is mounted (required). cache: what a new cache dir starts
   * with (`from=` with `source=`); absent: it starts empty.
   */
  source?: RunMountSource;
  /** cache without from=: the subdirectory of the cache dir that is mounted (`source=`), made when missing. */
  subpath?: string;
  readonly?: boolean;
  /** Cache id, secret id, or ssh agent id. */
  id?: string;
  sharing?: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  required?: boolean;
  env?: string;
  size?: number;
}

export interface RunRequest {
  chain: LayerChain;
  process: RunProcess;
  mounts: RunMount[];
  /** `default` is the host network (a RUN can reach a local Gitea or a package mirror), as BuildKit's default for local builds. */
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  /**
   * Files to make visible read-only for this step only (never in the change
   * layer): a `RUN <<EOF` heredoc starting with `#!` is written to
   * /dev/pipes/EOF and that path is the command, as BuildKit does.
   * Optional field added by the engine (issue 9).
   */
  inlineFiles?: { path: string; content: string; mode: number }[];
  /**
   * Values of the secrets this step's `type=secret` mounts name, by id
   * (the engine reads only those; a missing optional one has no mount).
   * An executor must keep them out of the layer, logs and errors.
   */
  secrets?: Record<string, Buffer>;
  /**
   * SSH agent sockets the step's `type=ssh` mounts name, by id: paths of
   * Unix sockets on the engine's machine (a local executor proxies them into
   * the step; a remote one forwards connections back to them). A missing
   * optional id has no mount.
   */
  ssh?: Record<string, string>;
  /** The RUN instruction, for errors. */
  location: SourceLocation;
  /** Progress id of the step (`#3`), for output and warning events. */
  stepId: string;
  /** Cache directory of this build (snapshots, cache mounts live below it). */
  cacheDir: string;
  /** Clamp the change layer's times (SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
  /** The process's output as it arrives. */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  onProgress?: ProgressListener;
  /** Abort: kill the process, remove what the step made, reject with ABORTED. */
  signal?: AbortSignal;
}

export interface RunResult {
  exitCode: number;
  /**
   * The file system change as a layer in `chain.store`; undefined when the
   * step changed nothing (the engine then records an empty_layer history
   * entry, as BuildKit does). Only set when exitCode is 0.
   */
  layer?: LayerResult;
}

export interface Executor {
  readonly name: string;
  run(req: RunRequest): Promise<RunResult>;
}
