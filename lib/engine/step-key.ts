/**
 * Cache keys of build steps (issue 11): what a step reads, found with a stat
 * walk and the context's content digests, without doing the step's work.
 *
 * A key is sha256 over canonical JSON of
 *   { v, parent, platform, createdBy, instruction, reads, seen, epoch }
 * where `instruction` is the resolved instruction (words expanded with the
 * ARG/ENV values it sees; for RUN also its whole environment: every ARG in
 * scope with a value and the ENV, as BuildKit's dispatchArg puts each ARG
 * into the LLB state's env, plus the shell folded into its args and the
 * mount specs), `reads` what it reads beyond that (below), `seen` the parts
 * of the stage's config it uses, and `epoch` SOURCE_DATE_EPOCH (it sets the
 * times that land in layers and history).
 *
 * Two chains per stage (the engine keeps both, lib/engine/build.ts):
 * - Filesystem steps (COPY, ADD, RUN, WORKDIR: {@link isFilesystemStep})
 *   chain from the filesystem state they start from, as BuildKit keys an
 *   LLB op by its inputs (a metadata instruction in between is not one):
 *   `parent` is the key of the stage's files, the base's advanced by the
 *   layers each step added (a step adding none leaves it). The parent
 *   fixes every file below (so /etc/passwd for --chown and WORKDIR's owner,
 *   the symlinks a destination goes through need no file read); what the
 *   step takes from the config is `seen`, exactly what applyStep hands it:
 *   COPY/ADD the WorkingDir when the destination is relative (never USER or
 *   ENV: files land 0:0 unless --chown, which is in the instruction); RUN the
 *   WorkingDir and User (its env and shell are in the instruction); WORKDIR
 *   the User (owner of the directories it makes; its path is absolute).
 * - Metadata steps (ARG, ENV, LABEL, USER, CMD, ...) chain from the full
 *   key, which every step advances. Their records hold only history
 *   entries, so keying them on everything before keeps the `created` times
 *   as the build that made them, and a hit never changes the config: that
 *   is recomputed from the instruction.
 *
 * `reads`:
 * - COPY/ADD from the context: every selected entry after .dockerignore and
 *   --exclude, by path, type, mode, size, link target, hard-link group,
 *   content digest (files) and mtime as it lands in the layer (clamped to
 *   SOURCE_DATE_EPOCH like the layer writer does; without it the file's own
 *   mtime lands, so a touch is a miss). Owners of context files never land
 *   (0:0 or --chown, which is in the instruction).
 * - COPY --from a stage: that stage's final filesystem key (the paths are in
 *   the instruction; the stage's LABEL or CMD is not read); from an image:
 *   its config and layer digests.
 * - ADD of a URL: only with --checksum (the key holds the URL and checksum);
 *   without one the step is not cacheable (every build downloads), as
 *   BuildKit re-checks a URL it cannot verify.
 * - RUN: each mount's source: a context bind by the content of its subtree,
 *   a `from=` by that stage's (or image's) key; secrets by id, cache, tmpfs
 *   and ssh mounts by their spec only (all in the instruction). Secret
 *   values never enter a key.
 */
import * as path from 'node:path';
import { OcistackError, type SourceLocation } from '../errors.js';
import type { BuildContext } from '../context/context.js';
import type { ContentDigests } from '../context/content-digests.js';
import type { FileIdentity } from '../context/source.js';
import { IgnoreMatcher } from '../context/ignore.js';
import type { Dispatched, ResolvedInstruction } from '../dockerfile/types.js';
import { canonicalJson, sha256, sha256Json } from '../image/digest.js';
import type { ContainerConfig, Descriptor, Digest, ImageConfig } from '../image/types.js';
import { isGitUrl, isHttpUrl } from './copy-add.js';
import { expandSource, type CopyInstruction } from './copy.js';
import { ContextSourceFs, type SourceStat } from './copy-source.js';
import { contextMountSource } from './run-mount-source.js';

/** Bumped when the key material changes meaning: old records become misses. */
const KEY_VERSION = 2;

/** Content digests of context files computed at once. */
const DIGEST_CONCURRENCY = 32;

/** The key of a base state: a pulled image or scratch, by its config and layers. */
export function baseStateKey(config: ImageConfig, layers: Descriptor[]): Digest {
  return sha256(canonicalJson({ v: KEY_VERSION, base: sha256(canonicalJson(config)), layers: layers.map((l) => l.digest) }));
}

/**
 * Whether a step changes the filesystem (and so chains from the filesystem
 * key): COPY, ADD, RUN and WORKDIR (its directory, and the one a RUN's
 * working directory may need). Every other instruction only changes the
 * config or the build's state.
 */
export function isFilesystemStep(r: ResolvedInstruction): boolean {
  return r.kind === 'copy' || r.kind === 'add' || r.kind === 'run' || r.kind === 'workdir';
}

/** What the key needs from the engine for one step. */
export interface StepKeyInput {
  /** The filesystem key for a filesystem step ({@link isFilesystemStep}), the full key otherwise. */
  parent: Digest;
  /** The stage's container config as the step starts (before its own change). */
  config: ContainerConfig | null | undefined;
  platform: string;
  dispatched: Dispatched;
  context: BuildContext;
  digests: () => Promise<ContentDigests>;
  sourceDateEpoch?: number;
  /** The key of a `--from`/`from=` stage or image. */
  fromKey: (from: string) => Promise<Digest>;
}

/** The step's cache key, or undefined when the step cannot be cached (ADD of a URL without --checksum). */
export async function stepKey(input: StepKeyInput): Promise<Digest | undefined> {
  const d = input.dispatched;
  const r = d.resolved;
  let reads: unknown = null;
  if (r.kind === 'copy' || r.kind === 'add') {
    reads = await copyReads(r, input, d.location);
    if (reads === undefined) return undefined;
  } else if (r.kind === 'run') {
    reads = await runReads(r, input, d.location);
  }
  // Hashed as it is written out: at 10x the reads are 85,000 entries (~15 MB of JSON); same digest as sha256(canonicalJson(...)).
  return sha256Json({
    v: KEY_VERSION,
    parent: input.parent,
    platform: input.platform,
    createdBy: d.createdBy,
    noHistory: d.noHistory === true,
    instruction: r,
    reads,
    seen: configSeen(r, input.config ?? {}),
    epoch: input.sourceDateEpoch ?? null,
  });
}

/**
 * What a filesystem step takes from the config, as lib/engine/build.ts
 * applyStep hands it over (keep the two in step: a value used there and
 * missing here is a wrong hit). Null for metadata steps, whose parent is
 * the full key.
 */
function configSeen(r: ResolvedInstruction, c: ContainerConfig): unknown {
  switch (r.kind) {
    case 'copy':
    case 'add':
      // copyLayer joins a relative destination to the WorkingDir; nothing else of the config lands.
      return { workdir: r.dest.startsWith('/') ? null : c.WorkingDir || '/' };
    case 'run':
      // The process's cwd and user (and the owner of a missing working directory); env and shell are in `r`.
      return { workdir: c.WorkingDir || '/', user: c.User ?? '' };
    case 'workdir':
      // The owner of the directories it creates; r.path is already absolute.
      return { user: c.User ?? '' };
    default:
      return null;
  }
}

type Entry = [rel: string, type: string, mode: number, size: number, mtime: number, data: string, hardlinkOf: string];

async function copyReads(ins: CopyInstruction, input: StepKeyInput, loc: SourceLocation): Promise<unknown> {
  if (ins.from !== undefined) return { from: await input.fromKey(ins.from) };
  const fail = (message: string, hint: string, code = 'COPY_SOURCE') => new OcistackError(message, { code, hint, location: loc });
  const src = new ContextSourceFs(input.context);
  const exclude = ins.exclude.length ? new IgnoreMatcher(ins.exclude, '--exclude') : undefined;
  const heredocNames = new Set(ins.heredocs.map((h) => h.name));
  const words: unknown[] = [];
  const files: DigestWant[] = [];
  // Opened before the first walk: a stat-cache hit is filled in as the walk finds the file,
  // so nothing per file outlives the walk but its key entry (85,000 files at 10x).
  let digests: ContentDigests | undefined;
  let wordIndex = 0;
  for (const source of ins.sources) {
    const hd = /^<<-?["']?([^"']+)["']?$/.exec(source);
    if (hd && heredocNames.has(hd[1]!)) continue; // the body is in the instruction
    if (isGitUrl(source)) return undefined; // copyLayer explains the refusal
    if (isHttpUrl(source)) {
      if (ins.checksum === undefined || ins.kind !== 'add') return undefined;
      words.push({ url: source });
      continue;
    }
    digests ??= await input.digests();
    const known = digests.knownDigest?.bind(digests);
    const entries: Entry[] = [];
    // Which matches there were and the names they land under (a wildcard's match or a symlink's own name).
    const matched: [string, string, string][] = [];
    // Hard links are grouped per source word, as the copy does.
    const links = new Map<string, string>();
    const add = (rel: string, stat: SourceStat): void => {
      let hardlinkOf = '';
      if (stat.type === 'file' && stat.nlink > 1) {
        const first = links.get(stat.inode);
        if (first === undefined) links.set(stat.inode, rel);
        else hardlinkOf = first;
      }
      const e: Entry = [rel, stat.type, stat.mode, stat.type === 'file' ? stat.size : 0, layerMtime(stat.mtime, input.sourceDateEpoch), stat.linkTarget ?? '', hardlinkOf];
      entries.push(e);
      if (stat.type !== 'file' || hardlinkOf) return;
      const hit = stat.identity && known?.(rel, stat.identity);
      if (hit) e[5] = hit;
      else files.push({ rel, entry: e, known: stat.identity });
    };
    for (const item of await expandSource(src, source, wordIndex++, ins.parents, exclude, fail)) {
      if (item.kind !== 'node') continue;
      matched.push([item.rel, item.name, item.parents ?? '']);
      add(item.rel, item.stat);
      if (item.stat.type !== 'dir') continue;
      const below = (child: { rel: string; stat: SourceStat }): void => {
        const sub = item.rel === '' ? child.rel : child.rel.slice(item.rel.length + 1);
        if (!exclude?.excludes(sub)) add(child.rel, child.stat);
      };
      // A local context is walked with synchronous calls: no promise per entry (BuildContext.walkSync).
      if (src.canWalkSync) for (const child of src.walkSync(item.rel)) below(child);
      else for await (const child of src.walk(item.rel)) below(child);
    }
    words.push({ matched, entries });
  }
  await fillDigests(files, digests ?? (await input.digests()), loc);
  return { words };
}

/** The mtime a layer gets for a file (lib/layer/write.ts clamps to SOURCE_DATE_EPOCH). */
function layerMtime(mtime: number, sde: number | undefined): number {
  return Math.max(0, sde !== undefined && mtime > sde ? sde : Math.floor(mtime));
}

/** A file whose digest the key needs, where it goes, and the walk's lstat identity of it (if any). */
interface DigestWant {
  rel: string;
  entry: Entry;
  known?: FileIdentity;
}

async function fillDigests(all: DigestWant[], digests: ContentDigests, loc: SourceLocation): Promise<void> {
  // Stat-cache hits first, without a promise each; the rest are read and hashed.
  const files: DigestWant[] = [];
  for (const f of all) {
    const hit = f.known && digests.knownDigest?.(f.rel, f.known);
    if (hit) f.entry[5] = hit;
    else files.push(f);
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const f = files[next++]!;
      try {
        f.entry[5] = await digests.fileDigest(f.rel, f.known);
      } catch (e) {
        throw new OcistackError(`cannot read "${f.rel}" in the build context: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
          code: 'CONTEXT_READ', location: loc, hint: 'check the file is readable and not changing during the build', cause: e,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DIGEST_CONCURRENCY, files.length) }, worker));
}

async function runReads(run: Extract<ResolvedInstruction, { kind: 'run' }>, input: StepKeyInput, loc: SourceLocation): Promise<unknown> {
  const out: unknown[] = [];
  for (const spec of run.parsedMounts ?? []) {
    if (spec.from !== undefined && (spec.type === 'bind' || spec.type === 'cache')) {
      out.push({ from: await input.fromKey(spec.from) });
    } else if (spec.type === 'bind') {
      const m = await contextMountSource(input.context, spec.source ?? '', loc);
      if (m.kind !== 'context') throw new Error('internal: context mount is not a context source');
      const base = path.relative(input.context.dir, m.root).split(path.sep).join('/');
      const files: DigestWant[] = [];
      const entries: Entry[] = m.entries.map((e) => {
        const entry: Entry = [e.rel, e.type, e.mode, e.type === 'file' ? e.size : 0, Math.floor(e.mtime), e.linkTarget ?? '', ''];
        if (e.type === 'file') files.push({ rel: e.rel === '' ? base : base === '' ? e.rel : `${base}/${e.rel}`, entry });
        return entry;
      });
      await fillDigests(files, await input.digests(), loc);
      out.push({ context: entries });
    } else out.push(null); // secret, ssh, cache, tmpfs: the spec (in the instruction) is all
  }
  return { mounts: out };
}
