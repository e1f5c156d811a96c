/**
 * A build context: the files a build may read (a {@link ContextSource}) and
 * the `.dockerignore` rules that hide some of them.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import type { ProgressListener } from '../progress/events.js';
import { IgnoreMatcher, parseDockerignore } from './ignore.js';
import { resolveScoped } from './resolve.js';
import { contextReadError, FsContextSource, normalizeContextPath, type ContextSource, type ContextStat } from './source.js';

export interface OpenContextOptions {
  /** Context directory. */
  dir: string;
  /** Path of the Dockerfile: `<Dockerfile>.dockerignore` beside it wins over `<dir>/.dockerignore`. */
  dockerfile?: string;
  onProgress?: ProgressListener;
}

/** One entry found while walking the context. */
export interface ContextEntry {
  /** Context-relative path. */
  rel: string;
  stat: ContextStat;
}

/** Siblings stat'ed concurrently while walking: enough to keep the thread pool busy, few enough to hold. */
const WALK_STAT_BATCH = 64;

export class BuildContext {
  readonly dir: string;
  readonly source: ContextSource;
  readonly ignore: IgnoreMatcher;
  /** The ignore file that was used, if any. */
  readonly ignoreFile?: string;
  private readonly onProgress?: ProgressListener;

  constructor(opts: { dir: string; source: ContextSource; ignore: IgnoreMatcher; ignoreFile?: string; onProgress?: ProgressListener }) {
    this.dir = opts.dir;
    this.source = opts.source;
    this.ignore = opts.ignore;
    this.ignoreFile = opts.ignoreFile;
    this.onProgress = opts.onProgress;
  }

  /** Whether a context-relative path is hidden by .dockerignore. */
  excluded(rel: string): boolean {
    if (rel === '' || this.ignore.empty) return false;
    return this.ignore.excludes(rel);
  }

  /** lstat that treats excluded paths as missing. */
  async lstat(rel: string): Promise<ContextStat | undefined> {
    if (this.excluded(rel)) return undefined;
    try {
      return await this.source.lstat(rel);
    } catch (e) {
      throw contextReadError(rel, e);
    }
  }

  /** Resolve symlinks in `rel` with the context root as `/` (never leaves the context). */
  async resolve(rel: string, followFinal: boolean): Promise<string> {
    return resolveScoped({ lstat: (r) => this.source.lstat(r), readlink: (r) => this.source.readlink(r) }, rel, followFinal);
  }

  /** Every name in a directory, byte order (excluded ones too: callers check {@link excluded}). */
  async readdir(rel: string): Promise<string[]> {
    try {
      return await this.source.readdir(rel);
    } catch (e) {
      throw contextReadError(rel, e);
    }
  }

  /**
   * Every non-excluded entry under `rel` (not `rel` itself), parents before
   * children, siblings in byte order. Sockets and devices are skipped with a
   * warning. An excluded directory is still walked when an `!` pattern could
   * re-include something below it. Through the source's synchronous calls
   * when it has them ({@link walkSync}).
   */
  async *walk(rel: string): AsyncGenerator<ContextEntry> {
    if (this.syncSource) {
      yield* this.walkSync(rel);
      return;
    }
    const names = await this.readdir(rel);
    // lstat a batch of siblings at once (the thread pool runs them in
    // parallel), then handle them in name order as before; the first failure
    // in name order is the one reported.
    for (let start = 0; start < names.length; start += WALK_STAT_BATCH) {
      const batch = names.slice(start, start + WALK_STAT_BATCH).map((name) => (rel === '' ? name : `${rel}/${name}`));
      const stats = await Promise.allSettled(batch.map((child) => this.source.lstat(child)));
      for (let i = 0; i < batch.length; i++) {
        const child = batch[i]!;
        const r = stats[i]!;
        if (r.status === 'rejected') throw contextReadError(child, r.reason);
        const walkInto = this.visit(child, r.value);
        if (walkInto === undefined) continue;
        if (walkInto.entry) yield walkInto.entry;
        if (walkInto.descend) yield* this.walk(child);
      }
    }
  }

  /** Whether {@link walkSync} can be used: the source has synchronous lstat/readdir/readlink. */
  get syncSource(): boolean {
    const s = this.source;
    return !!(s.lstatSync && s.readdirSync && s.readlinkSync);
  }

  /**
   * {@link walk} without promises, for a source with synchronous calls (a
   * local directory): the same entries, order, warnings and errors. Blocks
   * the event loop for the walk; a stat walk is what the step is waiting for.
   * @throws Error when the source has no synchronous calls.
   */
  *walkSync(rel: string): Generator<ContextEntry> {
    const s = this.source;
    if (!s.lstatSync || !s.readdirSync) throw new Error('internal: walkSync on a source without synchronous calls');
    let names: string[];
    try {
      names = s.readdirSync(rel);
    } catch (e) {
      throw contextReadError(rel, e);
    }
    // One clock reading per directory, before its lstats: the racy-file guard's "time of the lstat".
    const statMs = Date.now();
    for (const name of names) {
      const child = rel === '' ? name : `${rel}/${name}`;
      let st: ContextStat | undefined;
      try {
        st = s.lstatSync(child, statMs);
      } catch (e) {
        throw contextReadError(child, e);
      }
      const walkInto = this.visit(child, st);
      if (walkInto === undefined) continue;
      if (walkInto.entry) yield walkInto.entry;
      if (walkInto.descend) yield* this.walkSync(child);
    }
  }

  /** The walk's rule for one entry: yield it?, walk into it? (undefined: neither). */
  private visit(child: string, st: ContextStat | undefined): { entry?: ContextEntry; descend: boolean } | undefined {
    if (!st) return undefined;
    const excluded = this.excluded(child);
    if (st.type === 'socket' || st.type === 'device' || st.type === 'fifo') {
      if (!excluded) this.warn(`skipping ${st.type} "${child}" in the build context: only files, directories and symlinks can be copied`);
      return undefined;
    }
    return { entry: excluded ? undefined : { rel: child, stat: st }, descend: st.type === 'dir' && (!excluded || this.ignore.hasExceptions) };
  }

  warn(message: string): void {
    this.onProgress?.({ type: 'warning', message });
  }
}

/**
 * Open a build context directory and load its ignore rules.
 * @throws OcistackError `CONTEXT_NOT_FOUND` when `dir` is missing or not a directory.
 */
export async function openContext(opts: OpenContextOptions): Promise<BuildContext> {
  const dir = path.resolve(opts.dir);
  let st;
  try {
    st = await fsp.stat(dir);
  } catch (e) {
    throw new OcistackError(`build context "${opts.dir}" does not exist`, {
      code: 'CONTEXT_NOT_FOUND',
      hint: 'pass an existing directory as the build context',
      cause: e,
    });
  }
  if (!st.isDirectory()) {
    throw new OcistackError(`build context "${opts.dir}" is not a directory`, {
      code: 'CONTEXT_NOT_FOUND',
      hint: 'pass a directory as the build context, not a file',
    });
  }
  const candidates: string[] = [];
  if (opts.dockerfile) candidates.push(path.resolve(opts.dockerfile) + '.dockerignore');
  candidates.push(path.join(dir, '.dockerignore'));
  let patterns: string[] = [];
  let ignoreFile: string | undefined;
  for (const file of candidates) {
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new OcistackError(`cannot read ${file}: ${(e as Error).message}`, {
        code: 'CONTEXT_READ',
        hint: 'make the ignore file readable',
        cause: e,
      });
    }
    patterns = parseDockerignore(text);
    ignoreFile = file;
    break;
  }
  const ignore = new IgnoreMatcher(patterns, ignoreFile ? path.basename(ignoreFile) : '.dockerignore');
  return new BuildContext({ dir, source: new FsContextSource(dir), ignore, ignoreFile, onProgress: opts.onProgress });
}

export { normalizeContextPath };
