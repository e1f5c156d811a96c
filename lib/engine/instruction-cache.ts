/**
 * The instruction cache as the engine uses it: look a step's key up (a
 * record whose layer blobs are all still in the store), and record what a
 * step added to the image (its layers and history entries) after it ran.
 *
 * A record holds the step's delta only; the parent key chain says what lies
 * below. Reusing the history entries as recorded keeps their `created`
 * times, so an unchanged rebuild gives the same config and manifest digest
 * also without SOURCE_DATE_EPOCH.
 *
 * Records are written by atomic rename (lib/cache/record.ts): two builds
 * writing the same key write the same content and one rename wins; a build
 * killed mid-write leaves an owner-named temp that the next writer sweeps.
 * A record that cannot be read or parsed is a miss.
 */
import { readRecord, touchRecord, writeRecord, RECORD_VERSION, type CacheRecord, type RecordHistory, type RecordLayer } from '../cache/record.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor, Digest, ImageConfig } from '../image/types.js';

/** What a step added to a stage: read off the stage before and after it ran. */
export interface StepDelta {
  layers: RecordLayer[];
  history: RecordHistory[];
}

/** The stage's lengths before a step, to read its delta afterwards. */
export interface StageMark {
  layers: number;
  history: number;
}

export function markStage(config: ImageConfig, layers: Descriptor[]): StageMark {
  return { layers: layers.length, history: config.history?.length ?? 0 };
}

export function deltaSince(mark: StageMark, config: ImageConfig, layers: Descriptor[]): StepDelta {
  const diffIds = config.rootfs.diff_ids;
  return {
    layers: layers.slice(mark.layers).map((l, i) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, diffId: diffIds[mark.layers + i]! })),
    history: (config.history ?? []).slice(mark.history).map((h) => ({ ...h }) as RecordHistory),
  };
}

/** The record for `key` if it can be used: readable, and every layer blob it names is in the store. Touches it. */
export async function lookupStep(store: BlobStore, key: Digest): Promise<CacheRecord | undefined> {
  const record = await readRecord(store.root, key);
  if (!record) return undefined;
  for (const l of record.layers) if (!(await store.has(l.digest))) return undefined;
  await touchRecord(store.root, key);
  return record;
}

/** Record what a step added. A failure to write is not the build's failure: the next build misses. */
export async function recordStep(store: BlobStore, key: Digest, description: string, kind: string, delta: StepDelta): Promise<void> {
  const record: CacheRecord = {
    version: RECORD_VERSION,
    key,
    description,
    kind,
    created: new Date().toISOString(),
    layers: delta.layers,
    history: delta.history,
  };
  await writeRecord(store.root, record).catch(() => undefined);
}

/**
 * The image config's `created` without SOURCE_DATE_EPOCH: the newest history
 * entry's, so a build whose steps all came from the cache is dated as the
 * build that made them (a rebuild never makes a new image by the clock
 * alone). Undefined when there is no dated history.
 */
export function latestHistoryCreated(config: ImageConfig): string | undefined {
  let latest: string | undefined;
  let latestMs = -Infinity;
  for (const h of config.history ?? []) {
    if (!h.created) continue;
    const ms = Date.parse(h.created);
    if (Number.isFinite(ms) && ms > latestMs) {
      latestMs = ms;
      latest = h.created;
    }
  }
  return latest;
}
