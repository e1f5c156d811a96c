/**
 * RUN executors. The build engine prepares a root file system and a process
 * spec; an executor runs it (runc as root or rootless, later others) and the
 * engine turns the changed files into a layer. COPY-only builds never touch an
 * executor.
 */
import type { SourceLocation } from '../errors.js';
import type { ProgressListener } from '../progress/events.js';

export interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  target: string;
  source?: string;
  from?: string;
  readonly?: boolean;
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
  /** Directory holding the stage's root file system (writable, changes are captured by the engine). */
  rootfs: string;
  /** argv; a shell-form RUN is already `[...shell, script]`. */
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  mounts: RunMount[];
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  location: SourceLocation;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface RunResult {
  exitCode: number;
}

export interface Executor {
  readonly name: string;
  run(req: RunRequest): Promise<RunResult>;
}
