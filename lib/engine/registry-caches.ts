/**
 * The engine's side of the registry cache (`cacheFrom` / `cacheTo`,
 * lib/cache/registry-cache.ts does the registry work): checking the options
 * before the build, and after it choosing which steps' records to export
 * (`mode=min`: the stages whose results are in the final image, i.e. the
 * target and the stages it is `FROM`-based on; `mode=max`: every stage the
 * build ran) and exporting them.
 */
import { isAbortError } from '../abort.js';
import { OcistackError } from '../errors.js';
import type { BuildPlan } from '../dockerfile/types.js';
import type { BlobStore } from '../image/store.js';
import type { Digest, Platform } from '../image/types.js';
import type { ProgressListener } from '../progress/events.js';
import { parseReference } from '../registry/reference.js';
import type { RegistryOptions } from '../registry/types.js';
import { readRecord, type CacheRecord } from '../cache/record.js';
import { exportCache, exportError } from '../cache/registry-cache.js';
import type { RegistryCache } from './options.js';

/** Which key a step had (cached or not) and which stage it belongs to: the export picks by these. */
export interface StepKeyNote {
  /** Step id (`#N`), for the plan's order. */
  id: string;
  stage: number;
  key: Digest;
}

/**
 * Bad `cacheFrom`/`cacheTo` entries fail before any work (usage errors,
 * exit 2), as does a `cacheTo` ref that is one of the image's `tags` (the
 * export would overwrite the image pushed there).
 */
export function checkRegistryCaches(list: RegistryCache[] | undefined, what: 'cacheFrom' | 'cacheTo', tags: string[] = []): void {
  const tagNames = new Set(tags.map((t) => parseReference(t).toString()));
  for (const c of list ?? []) {
    const hint = what === 'cacheTo'
      ? 'write e.g. --cache-to type=registry,ref=REGISTRY/OWNER/IMAGE:cache[,mode=max]'
      : 'write e.g. --cache-from type=registry,ref=REGISTRY/OWNER/IMAGE:cache';
    if (c?.type !== 'registry') throw new OcistackError(`${what}: type "${String(c?.type)}" is not supported`, { code: 'USAGE', exitCode: 2, hint: `only type=registry is; ${hint}` });
    if (typeof c.ref !== 'string' || !c.ref.trim()) throw new OcistackError(`${what}: ref is missing`, { code: 'USAGE', exitCode: 2, hint });
    const ref = parseReference(c.ref);
    if (what === 'cacheTo' && ref.digest) throw new OcistackError(`${what}: ref ${c.ref} names a digest; a cache is written under a tag`, { code: 'USAGE', exitCode: 2, hint });
    if (what === 'cacheTo' && tagNames.has(ref.toString())) {
      throw new OcistackError(`${what}: ref ${c.ref} is also a tag of the image; the cache would replace the image there`, { code: 'USAGE', exitCode: 2, hint: 'give the cache its own tag, e.g. IMAGE:cache' });
    }
    if (c.mode !== undefined && c.mode !== 'min' && c.mode !== 'max') throw new OcistackError(`${what}: mode "${String(c.mode)}" is neither min nor max`, { code: 'USAGE', exitCode: 2, hint });
    if (what === 'cacheFrom' && c.mode !== undefined) throw new OcistackError(`${what}: mode is for cacheTo only`, { code: 'USAGE', exitCode: 2, hint });
  }
}

/** The registries of the cache refs: the user named them, so they get the tags' credentials and TLS exceptions. */
export function cacheRegistries(opts: { cacheFrom?: RegistryCache[]; cacheTo?: RegistryCache[] }): string[] {
  return [...(opts.cacheFrom ?? []), ...(opts.cacheTo ?? [])].map((c) => parseReference(c.ref).registry);
}

/** The stages whose steps `mode` exports. */
export function exportedStages(plan: BuildPlan, mode: 'min' | 'max', ran: Iterable<number>): Set<number> {
  if (mode === 'max') return new Set(ran);
  const out = new Set<number>();
  let st: BuildPlan['stages'][number] | undefined = plan.stages[plan.target];
  while (st && !out.has(st.index)) {
    out.add(st.index);
    st = st.base.kind === 'stage' ? plan.stages[st.base.index] : undefined;
  }
  return out;
}

/** The records of the steps of `stages`, in the plan's step order, each key once; steps without a record (not cacheable) are left out. */
export async function exportedRecords(store: BlobStore, notes: StepKeyNote[], stages: Set<number>): Promise<CacheRecord[]> {
  const chosen = notes.filter((n) => stages.has(n.stage)).sort((a, b) => stepNumber(a.id) - stepNumber(b.id));
  const seen = new Set<Digest>();
  const out: CacheRecord[] = [];
  for (const n of chosen) {
    if (seen.has(n.key)) continue;
    seen.add(n.key);
    const r = await readRecord(store.root, n.key);
    if (r) out.push(r);
  }
  return out;
}

export interface ExportCachesInput {
  caches: RegistryCache[];
  plan: BuildPlan;
  notes: StepKeyNote[];
  platform: Platform;
  store: BlobStore;
  registry: RegistryOptions;
  progress: ProgressListener;
  stepId: () => string;
}

/**
 * Export to every `cacheTo`, one after the other. A failure throws an error
 * naming the registry unless that cache has `ignoreError` (then a warning).
 */
export async function exportCaches(input: ExportCachesInput): Promise<void> {
  const ran = new Set(input.notes.map((n) => n.stage));
  for (const c of input.caches) {
    const mode = c.mode ?? 'min';
    const id = input.stepId();
    const name = `exporting cache to ${c.ref} (mode=${mode})`;
    const started = performance.now();
    input.progress({ type: 'step', id, name, status: 'start' });
    try {
      const records = await exportedRecords(input.store, input.notes, exportedStages(input.plan, mode, ran));
      const digest = await exportCache({ ref: c.ref, mode, records, platform: input.platform, store: input.store, registry: input.registry });
      input.progress({ type: 'info', message: `exported ${records.length} cache record${records.length === 1 ? '' : 's'} to ${c.ref}@${digest}` });
      input.progress({ type: 'step', id, name, status: 'done', durationMs: performance.now() - started });
    } catch (e) {
      if (isAbortError(e)) throw e;
      const err = exportError(c.ref, e);
      input.progress({ type: 'step', id, name, status: 'error', error: err.message, durationMs: performance.now() - started });
      if (!c.ignoreError) throw err;
      input.progress({ type: 'warning', message: `${err.message}; ignored (ignore-error=true)` });
    }
  }
}

function stepNumber(id: string): number {
  return Number(id.replace(/^#/, ''));
}
