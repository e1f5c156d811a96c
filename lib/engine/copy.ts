/**
 * COPY and ADD as the Dockerfile reference defines them, turned into one
 * layer: sources from the build context (or `--from` a stage or image),
 * wildcards, directory contents, a WORKDIR-relative destination resolved
 * through the symlinks the image already has, missing parents created,
 * `--chown`/`--chmod`/`--link`/`--parents`/`--exclude`, and for ADD local
 * archives and URLs.
 *
 * Everything is checked before the layer is written, so a bad source or
 * destination fails with the Dockerfile line and nothing lands in the store.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { createReadStream } from 'node:fs';
import { removeTemp, tempName, trackTemp } from '../temp-files.js';
import { OcistackError, type SourceLocation } from '../errors.js';
import type { BuildContext } from '../context/context.js';
import { cleanPath, IgnoreMatcher } from '../context/ignore.js';
import { contextReadError, normalizeContextPath } from '../context/source.js';
import type { ResolvedInstruction } from '../dockerfile/types.js';
import type { BlobStore } from '../image/store.js';
import type { ImageFs } from '../layer/image-fs.js';
import { emptyDestination, type CopyDestination } from './copy-destination.js';
import type { LayerEntry, LayerResult } from '../layer/types.js';
import { writeLayer } from '../layer/write.js';
import { resolveInRootSync } from '../scoped-path.js';
import type { ProgressListener } from '../progress/events.js';
import { downloadUrl, isGitUrl, isHttpUrl, readArchive } from './copy-add.js';
import { redactUrlCredentials } from '../redact.js';
import { parseChmod, resolveChown, type ChmodFn, type Owner } from './copy-chown.js';
import { compileSegment, ContextSourceFs, hasWildcard, ImageSourceFs, type SourceFs, type SourceStat } from './copy-source.js';

/** Readability checks of context files run this many at a time. */
const CHECK_CONCURRENCY = 32;

export type CopyInstruction = Extract<ResolvedInstruction, { kind: 'copy' | 'add' }>;

export interface CopyLayerOptions {
  instruction: CopyInstruction;
  /** The instruction's place in the Dockerfile, named by every error. */
  location: SourceLocation;
  context: BuildContext;
  /** Set when `--from` names a stage or image (the engine resolves it). */
  from?: ImageFs;
  /** The current stage's file system. */
  target: ImageFs;
  /** The stage's WORKDIR (absolute). */
  workdir: string;
  store: BlobStore;
  sourceDateEpoch?: number;
  onProgress?: ProgressListener;
  /** ADD URL downloads: longest silence (default 30 s; `--timeout`). They stop with the store's signal. */
  downloadIdleMs?: number;
}

/** One thing to copy, after sources were expanded. */
export type Item =
  | { kind: 'node'; src: SourceFs; rel: string; stat: SourceStat; name: string; parents?: string; /** index of the source word */ word: number }
  | { kind: 'bytes'; name: string; data: Buffer }
  | { kind: 'download'; url: string; file: string; size: number; mtime?: number; name: string };

function posixJoin(a: string, b: string): string {
  return cleanPath(`${a}/${b}`);
}

/**
 * xattrs a COPY/ADD layer keeps: only `security.capability`, as BuildKit
 * does (its layers are diffs written by containerd's archive writer, which
 * records that one attribute; user.*, trusted.* and security.selinux of a
 * source are not in the resulting layer). Values are byte strings (latin1).
 */
export const KEPT_XATTRS: readonly string[] = ['security.capability'];

/** `{ xattrs }` with only {@link KEPT_XATTRS}, or `{}` when none is left (spread into a LayerEntry). */
export function keptXattrs(xattrs: Record<string, string> | undefined): { xattrs?: Record<string, string> } {
  if (!xattrs) return {};
  let out: Record<string, string> | undefined;
  for (const k of KEPT_XATTRS) if (xattrs[k] !== undefined) (out ??= {})[k] = xattrs[k]!;
  return out ? { xattrs: out } : {};
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function baseOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Collects layer entries for one COPY/ADD and checks them against the stage. */
class LayerPlan {
  readonly entries = new Map<string, LayerEntry>();
  /** Hard-link groups: like BuildKit, links are kept within one source, not across sources. */
  private links = new Map<string, string>();
  /** Files to check for readability and (image sources) to extract, per source. */
  readonly reads = new Map<SourceFs, { rel: string; stat: SourceStat }[]>();

  constructor(
    private readonly target: CopyDestination,
    private readonly owner: Owner | undefined,
    private readonly chmod: ChmodFn | undefined,
    private readonly now: number,
    private readonly fail: (msg: string, hint: string, code?: string) => OcistackError,
  ) {}

  /**
   * Make sure every component of `dir` is a directory: existing ones keep their
   * metadata, missing ones are created 0755, or with the permission bits of an
   * octal --chmod as current BuildKit does (tonistiigi/fsutil #228, the fix of
   * moby/buildkit #4945: fsutil's MkdirAll gets the chmod mode; a symbolic
   * --chmod leaves them 0755).
   */
  ensureDir(dir: string): void {
    // Every entry of a deep tree asks for its parent: answer a known one at once (cubic in depth otherwise).
    if (this.ensured.has(dir)) return;
    let cur = '';
    for (const part of dir.split('/').filter(Boolean)) {
      cur += '/' + part;
      const planned = this.entries.get(cur);
      if (planned) {
        if (planned.type !== 'dir') throw this.notADir(cur);
        continue;
      }
      const node = this.target.lstat(cur);
      if (node && node.type !== 'dir') {
        if (node.type === 'symlink') {
          // Only reachable when the caller did not resolve; resolve now.
          const real = this.target.resolve(cur, true);
          if (this.target.stat(real)?.type === 'dir') continue;
        }
        throw this.notADir(cur);
      }
      if (node) this.entries.set(cur, { path: cur, type: 'dir', mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime, ...keptXattrs(node.xattrs) });
      else this.entries.set(cur, { path: cur, type: 'dir', mode: this.chmod?.octal !== undefined ? this.chmod.octal & 0o777 : 0o755, uid: this.owner?.uid ?? 0, gid: this.owner?.gid ?? 0, mtime: this.now });
    }
    this.ensured.add(dir);
  }

  /** Directories {@link ensureDir} checked; forgotten when a planned directory is replaced by something else. */
  private ensured = new Set<string>();

  private replacing(dest: string): void {
    if (this.entries.get(dest)?.type === 'dir') this.ensured.clear();
  }

  private notADir(p: string): OcistackError {
    return this.fail(`destination ${p} is not a directory in the image`, `copy to a path below a directory, or remove the file at ${p} first`, 'COPY_DEST');
  }

  /** Start a new source: hard links to files of earlier sources become copies. */
  nextSource(): void {
    this.links = new Map();
  }

  /** Resolve a destination through the stage's symlinks (parents always, the last component when `followFinal`). */
  resolve(p: string, followFinal: boolean): string {
    return this.target.resolve(p, followFinal);
  }

  /**
   * Where archive member `rel` lands when the archive is unpacked into the
   * directory `dir`: symlinks that earlier members made (and those already
   * in the image below `dir`) are followed with `dir` as the root, as
   * Docker's and Buildah's unpackers do (they chroot into the destination).
   * So `d/x` after `d -> /real` lands at `<dir>/real/x`, and
   * `d -> ../../../etc` never leads out of `dir`.
   */
  resolveMember(dir: string, rel: string, followFinal: boolean): string {
    const inDir = resolveInRootSync(rel, followFinal, (r) => {
      const at = posixJoin(dir, r);
      const planned = this.entries.get(at);
      if (planned) return planned.type === 'symlink' ? planned.linkTarget : undefined;
      const node = this.target.lstat(at);
      return node?.type === 'symlink' ? node.linkTarget : undefined;
    });
    return inDir === '' ? dir : posixJoin(dir, inDir);
  }

  /** A device node or FIFO from an archive at `dest` (already resolved). */
  addSpecial(stat: SourceStat, special: { type: 'char' | 'block' | 'fifo'; devmajor: number; devminor: number }, dest: string): void {
    if (dest === '/') throw this.fail('cannot unpack a device or FIFO onto the root directory', 'fix the archive', 'COPY_DEST');
    this.ensureDir(parentOf(dest));
    const existing = this.target.lstat(dest);
    if (existing?.type === 'dir' && !this.entries.has(dest)) throw this.fail(`cannot unpack ${special.type === 'fifo' ? 'a FIFO' : 'a device'} over directory ${dest}`, 'remove the directory first, or unpack elsewhere', 'COPY_DEST');
    const owner = this.owner ?? { uid: stat.uid, gid: stat.gid };
    this.replacing(dest);
    this.entries.set(dest, {
      path: dest,
      type: special.type,
      mode: this.chmod ? this.chmod(stat.mode, false) : stat.mode,
      uid: owner.uid,
      gid: owner.gid,
      mtime: stat.mtime,
      ...(special.type === 'fifo' ? {} : { devmajor: special.devmajor, devminor: special.devminor }),
      ...keptXattrs(stat.xattrs),
    });
  }

  /** Add one source entry at `dest` (already resolved). */
  add(src: SourceFs, rel: string, stat: SourceStat, dest: string): void {
    if (dest === '/') {
      if (stat.type !== 'dir') throw this.fail('cannot copy a file onto the root directory', 'give the destination a file name, or end it with /', 'COPY_DEST');
      return;
    }
    this.ensureDir(parentOf(dest));
    const owner = this.owner ?? (src.kind === 'image' ? { uid: stat.uid, gid: stat.gid } : { uid: 0, gid: 0 });
    const mode = stat.type === 'symlink' ? 0o777 : this.chmod ? this.chmod(stat.mode, stat.type === 'dir') : stat.mode;
    const base = { path: dest, mode, uid: owner.uid, gid: owner.gid, mtime: stat.mtime, ...keptXattrs(stat.xattrs) };
    if (stat.type === 'dir') {
      this.entries.set(dest, { ...base, type: 'dir' });
      this.ensured.add(dest);
      return;
    }
    this.replacing(dest);
    if (stat.type === 'symlink') {
      this.entries.set(dest, { ...base, type: 'symlink', linkTarget: stat.linkTarget ?? '' });
      return;
    }
    if (stat.type !== 'file') return;
    const existing = this.target.lstat(dest);
    if (existing?.type === 'dir' && !this.entries.has(dest)) {
      throw this.fail(`cannot copy file ${rel || '.'} over directory ${dest}`, 'end the destination with / to copy into the directory', 'COPY_DEST');
    }
    if (stat.nlink > 1) {
      const first = this.links.get(stat.inode);
      if (first && first !== dest) {
        this.entries.set(dest, { ...base, type: 'hardlink', linkTarget: first });
        return;
      }
      this.links.set(stat.inode, dest);
    }
    this.entries.set(dest, { ...base, type: 'file', size: stat.size, content: src.content(rel, stat) });
    let list = this.reads.get(src);
    if (!list) this.reads.set(src, (list = []));
    list.push({ rel, stat });
  }

  addBytes(dest: string, data: Buffer | { file: string; size: number }, mode: number, mtime: number): void {
    this.ensureDir(parentOf(dest));
    const existing = this.target.lstat(dest);
    if (existing?.type === 'dir') throw this.fail(`cannot write file over directory ${dest}`, 'end the destination with / to copy into the directory', 'COPY_DEST');
    const content = Buffer.isBuffer(data) ? () => (async function* () { yield data; })() : () => createReadStream(data.file);
    const size = Buffer.isBuffer(data) ? data.length : data.size;
    this.replacing(dest);
    this.entries.set(dest, {
      path: dest,
      type: 'file',
      mode: this.chmod ? this.chmod(mode, false) : mode,
      uid: this.owner?.uid ?? 0,
      gid: this.owner?.gid ?? 0,
      mtime,
      size,
      content,
    });
  }
}

/**
 * Build the layer of one COPY or ADD instruction.
 * @throws OcistackError naming `location` for every bad source, destination, owner or download.
 */
export async function copyLayer(opts: CopyLayerOptions): Promise<LayerResult> {
  const ins = opts.instruction;
  const loc = opts.location;
  const word = ins.kind.toUpperCase();
  const fail = (message: string, hint: string, code = 'COPY_SOURCE') => new OcistackError(message, { code, hint, location: loc });
  const now = opts.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
  // --link layers do not depend on what is below them: resolve against an empty image.
  const target: CopyDestination = ins.link ? emptyDestination : opts.target;
  const owner = ins.chown ? await resolveChown(ins.chown, opts.target, loc) : undefined;
  const chmod = ins.chmod ? parseChmod(ins.chmod, loc) : undefined;
  if (ins.checksum !== undefined && (ins.kind !== 'add' || !ins.sources.every(isHttpUrl))) {
    throw fail('--checksum is only supported for ADD of http(s) URLs', 'remove --checksum, or use it with ADD <url>', 'USAGE');
  }
  const src: SourceFs = opts.from ? new ImageSourceFs(opts.from) : new ContextSourceFs(opts.context);
  const exclude = ins.exclude.length ? new IgnoreMatcher(ins.exclude, '--exclude') : undefined;

  await fsp.mkdir(path.join(opts.store.root, 'tmp'), { recursive: true });
  // Owner-named and registered (lib/temp-files.ts): removed on abort, swept after kill -9.
  const tmpDir = path.join(opts.store.root, 'tmp', tempName('copy'));
  trackTemp(tmpDir);
  await fsp.mkdir(tmpDir);
  try {
    // 1. Expand the sources.
    // Heredoc sources (the front end moved them from `sources` to `heredocs`; the body is already expanded).
    const items: Item[] = ins.heredocs.map((h) => ({ kind: 'bytes', name: h.name, data: Buffer.from(h.content, 'utf8') }));
    const heredocNames = new Set(ins.heredocs.map((h) => h.name));
    let wordIndex = 0;
    for (const source of ins.sources) {
      const hd = /^<<-?["']?([^"']+)["']?$/.exec(source);
      if (hd && heredocNames.has(hd[1]!)) continue;
      if (isGitUrl(source)) {
        throw fail(`${word} from a git repository (${redactUrlCredentials(source)}) is not supported yet`, 'clone the repository into the build context and COPY it, or download an archive URL with ADD');
      }
      if (isHttpUrl(source)) {
        if (ins.kind !== 'add') throw fail(`COPY cannot download URLs (${redactUrlCredentials(source)})`, 'use ADD for URLs, or download the file into the build context', 'COPY_SOURCE');
        const d = await downloadUrl(source, tmpDir, ins.checksum, loc, { signal: opts.store.signal, idleMs: opts.downloadIdleMs });
        items.push({ kind: 'download', url: source, ...d });
        continue;
      }
      items.push(...(await expandSource(src, source, wordIndex++, ins.parents, exclude, fail)));
    }
    if (items.length === 0 && ins.sources.length === 0) throw fail(`${word} needs at least one source and a destination`, `write ${word} <src>... <dest>`, 'USAGE');

    // 2. Where do they go?
    const destWord = ins.dest;
    const destIsDir = destWord.endsWith('/') || destWord === '.' || destWord.endsWith('/.') || destWord === '..' || destWord.endsWith('/..');
    if (items.length > 1 && !destIsDir) {
      throw fail(`when ${word} has more than one source file, the destination must be a directory and end with a / ("${destWord}")`, `write the destination as "${destWord}/"`, 'COPY_DEST');
    }
    const destAbs = destWord.startsWith('/') ? cleanPath(destWord) : posixJoin(opts.workdir || '/', destWord);
    const plan = new LayerPlan(target, owner, chmod, now, (m, h, c) => fail(m, h, c ?? 'COPY_DEST'));

    let lastWord = -1;
    for (const item of items) {
      // Hard links are kept among the files of one source word (all its wildcard matches), as BuildKit does.
      if (item.kind !== 'node' || item.word !== lastWord) plan.nextSource();
      lastWord = item.kind === 'node' ? item.word : -1;
      if (item.kind === 'bytes' || item.kind === 'download') {
        const file = fileDest(plan, target, destAbs, destIsDir, item.name);
        if (item.kind === 'bytes') plan.addBytes(file, item.data, 0o644, now);
        // Downloaded files are 0600, dated by Last-Modified, as Docker does.
        else plan.addBytes(file, { file: item.file, size: item.size }, 0o600, item.mtime ?? now);
        continue;
      }
      const { rel, stat } = item;
      const baseDest = item.parents !== undefined ? posixJoin(destAbs, item.parents) : destAbs;
      if (stat.type === 'dir') {
        const dir = plan.resolve(baseDest, true);
        plan.ensureDir(dir);
        for await (const child of src.walk(rel)) {
          const sub = rel === '' ? child.rel : child.rel.slice(rel.length + 1);
          if (exclude?.excludes(sub)) continue;
          const dest = plan.resolve(posixJoin(dir, sub), child.stat.type === 'dir');
          plan.add(src, child.rel, child.stat, dest);
        }
        continue;
      }
      if (ins.kind === 'add' && src.kind === 'context' && stat.type === 'file') {
        const archive = await readArchive(path.join(opts.context.dir, rel), rel, tmpDir, loc).catch((e: unknown) => {
          if (e instanceof OcistackError) throw e;
          throw contextError(rel, e, loc);
        });
        if (archive) {
          const dir = plan.resolve(baseDest, true);
          plan.ensureDir(dir);
          for (const ae of archive) {
            // Member after member, through the symlinks earlier members made (within the destination).
            const dest = plan.resolveMember(dir, ae.rel, ae.stat.type === 'dir');
            if (ae.special) {
              plan.addSpecial(ae.stat, ae.special, dest);
              continue;
            }
            const archiveSrc = archiveSourceFs(ae.file);
            // Archive members keep their own owners unless --chown says otherwise.
            plan.add(archiveSrc, ae.rel, ae.stat, dest);
          }
          continue;
        }
      }
      const dest = item.parents !== undefined ? plan.resolve(posixJoin(baseDest, item.name), false) : fileDest(plan, target, destAbs, destIsDir, item.name);
      plan.add(src, rel, stat, dest);
    }

    // 3. Fail now, not halfway through the layer, on unreadable files.
    for (const [s, files] of plan.reads) {
      if (s.kind === 'context') {
        // Many checks in flight (each is an open and a close in the thread
        // pool); the first unreadable file in copy order is the one reported.
        const bad = await firstFailure(files.length, CHECK_CONCURRENCY, (i) => s.checkReadable(files[i]!.rel));
        if (bad) throw contextError(files[bad.index]!.rel, bad.error, loc);
      } else await s.prepare(files, tmpDir);
    }
    plan.reads.clear(); // checked (or extracted): not needed while the layer is written
    items.length = 0;

    // 4. Write it.
    try {
      // Handed over, not shared: the writer drops each entry once written, which frees it only if the plan lets go too.
      return await writeLayer(drain(plan.entries), { store: opts.store, sourceDateEpoch: opts.sourceDateEpoch });
    } catch (e) {
      if (e instanceof OcistackError && !e.location) throw new OcistackError(e.message, { code: e.code, hint: e.hint, location: loc, cause: e });
      if (!(e instanceof OcistackError)) throw new OcistackError(`${word} failed: ${(e as Error).message}`, { code: 'COPY_WRITE', location: loc, hint: 'check the source files are readable and not changing during the build', cause: e });
      throw e;
    }
  } finally {
    await removeTemp(tmpDir);
  }
}

/** The map's values in order, each removed as it is taken (deleting the current key while iterating a Map is safe). */
function* drain<V>(map: Map<string, V>): Generator<V> {
  for (const [k, v] of map) {
    map.delete(k);
    yield v;
  }
}

/**
 * Run `check(0..n-1)` with `concurrency` in flight; resolves with the lowest
 * index that failed (and its error), as a loop in order would have found,
 * or undefined when all passed.
 */
async function firstFailure(n: number, concurrency: number, check: (i: number) => Promise<void>): Promise<{ index: number; error: unknown } | undefined> {
  let next = 0;
  let failed: { index: number; error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    // Indexes past a known failure cannot change the answer: stop taking them.
    while (next < n && (failed === undefined || next < failed.index)) {
      const i = next++;
      try {
        await check(i);
      } catch (error) {
        if (failed === undefined || i < failed.index) failed = { index: i, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return failed;
}

function contextError(rel: string, e: unknown, loc: SourceLocation): OcistackError {
  const c = contextReadError(rel, e);
  return new OcistackError(c.message, { code: c.code, hint: c.hint, location: loc, cause: e });
}

/** Where a single file named `name` goes for destination `destAbs`. */
function fileDest(plan: LayerPlan, target: CopyDestination, destAbs: string, destIsDir: boolean, name: string): string {
  if (destIsDir) return plan.resolve(posixJoin(destAbs, name), false);
  const resolved = plan.resolve(destAbs, false);
  // An existing directory (or symlink to one) receives the file inside it.
  if (resolved !== '/' && target.stat(resolved)?.type === 'dir') return plan.resolve(posixJoin(target.resolve(resolved, true), name), false);
  return resolved;
}

/**
 * A SourceFs over one file unpacked from an ADD archive. It says `image` so
 * that members keep the owners stored in the archive (as `--from` sources
 * keep theirs) unless `--chown` is given.
 */
function archiveSourceFs(file: string | undefined): SourceFs {
  return {
    kind: 'image',
    lstat: async () => undefined,
    resolve: async (r) => r,
    readdir: async () => [],
    walk: async function* () {},
    prepare: async () => {},
    content: () => () => createReadStream(file!),
    checkReadable: async () => {},
  };
}

/**
 * Expand one source word into the entries it names: a path, or every match
 * of a wildcard. Sources are relative to the context root (or the `--from`
 * root); climbing above it is an error.
 */
export async function expandSource(
  src: SourceFs,
  word: string,
  wordIndex: number,
  parents: boolean,
  exclude: IgnoreMatcher | undefined,
  fail: (m: string, h: string, c?: string) => OcistackError,
): Promise<Item[]> {
  const where = src.kind === 'context' ? 'the build context' : 'the --from stage or image';
  // `--parents` keeps the path below an optional `/./` pivot.
  let pivot = '';
  let pattern = word;
  if (parents) {
    const i = word.indexOf('/./');
    if (i >= 0) {
      pivot = normalizeContextPath(word.slice(0, i)) ?? '';
      pattern = word.slice(0, i) + '/' + word.slice(i + 3);
    }
  }
  const rel = normalizeContextPath(pattern);
  if (rel === undefined) {
    throw fail(`source "${word}" is outside ${where}`, 'sources are relative to the build context root and cannot use .. to leave it; move the file into the context', 'COPY_SOURCE');
  }
  let matches: string[];
  if (hasWildcard(rel)) {
    matches = await glob(src, rel);
    if (exclude) matches = matches.filter((m) => !exclude.excludes(m));
    if (matches.length === 0) {
      throw fail(`source "${word}" matches no files in ${where}`, src.kind === 'context' ? 'check the pattern, and that .dockerignore does not exclude the files' : 'check the pattern and the --from stage', 'COPY_SOURCE');
    }
  } else matches = [rel];
  const items: Item[] = [];
  for (const m of matches) {
    let real: string;
    try {
      real = await src.resolve(m, true);
    } catch (e) {
      if (e instanceof OcistackError) throw fail(e.message, e.hint ?? '', e.code);
      throw e;
    }
    const stat = await src.lstat(real);
    if (!stat || stat.type === 'other') {
      const excluded = src.kind === 'context' && (src as ContextSourceFs).context.excluded(m);
      throw fail(
        `source "${m === '' ? '.' : m}" ${excluded ? 'is excluded by .dockerignore' : `does not exist in ${where}`}`,
        excluded ? 'remove the matching pattern from .dockerignore, or add a ! exception for it' : src.kind === 'context' ? 'check the path is relative to the build context directory' : 'check the path exists in the --from stage or image',
        'COPY_SOURCE',
      );
    }
    const name = m === '' ? '' : baseOf(m);
    const item: Item = { kind: 'node', src, rel: real, stat, name, word: wordIndex };
    if (parents) {
      const kept = pivot && m.startsWith(pivot + '/') ? m.slice(pivot.length + 1) : m;
      item.parents = stat.type === 'dir' ? kept : parentOf('/' + kept).slice(1);
    }
    items.push(item);
  }
  return items;
}

/** Match a wildcard path segment by segment (Go filepath.Match per segment), results in byte order. */
async function glob(src: SourceFs, rel: string): Promise<string[]> {
  let prefixes = [''];
  for (const seg of rel.split('/')) {
    const next: string[] = [];
    for (const p of prefixes) {
      if (!hasWildcard(seg)) {
        next.push(p === '' ? seg : `${p}/${seg}`);
        continue;
      }
      const re = compileSegment(seg);
      const real = await src.resolve(p, true);
      const st = await src.lstat(real);
      if (!st || st.type !== 'dir') continue;
      for (const name of await src.readdir(real)) {
        if (!re.test(name)) continue;
        // Check existence (and .dockerignore) on the resolved parent, never through a link out of the root.
        if (await src.lstat(real === '' ? name : `${real}/${name}`)) next.push(p === '' ? name : `${p}/${name}`);
      }
    }
    prefixes = next;
  }
  const out: string[] = [];
  for (const p of prefixes) if (await src.lstat(await src.resolve(p, false))) out.push(p);
  return out.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
