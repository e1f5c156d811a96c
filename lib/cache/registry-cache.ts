/**
 * The registry cache (`--cache-from` / `--cache-to type=registry,ref=REF`):
 * instruction-cache records shared through a registry, so a second machine
 * or a CI runner reuses the step results of another (docs/cache.md).
 *
 * Import ({@link RemoteRecords}): at build start the cache manifest and its
 * config (the records) of every `--cache-from` ref are fetched, all at
 * once, next to the base image pulls. A step that misses locally and whose
 * key an imported record has fetches that record's layer blobs from the
 * cache repository (digest-verified like any pull), writes the record
 * locally (the next build hits without the registry) and is a hit. Layers
 * are fetched for hits only, never up front. Nothing about the import fails
 * a build: a missing ref, an unreachable registry, a manifest that is no
 * cache or a blob that cannot be fetched is a warning, and the step runs.
 *
 * Export ({@link exportCache}): the chosen records packed into a cache
 * image (cache-image.ts) and pushed like any image: HEAD first, blobs the
 * repository has are skipped, blobs known in another repository of the
 * registry (the image just pushed, the imported cache) are mounted, then
 * the config, then the manifest under REF's tag.
 *
 * Trust: a record says "this key gives these layers"; nothing checks that
 * running the step would give them. Whoever can push to a `--cache-from`
 * repository can put content into the builds that import it, as whoever
 * can push a base image can. Import only caches your builds write.
 */
import { forEachLimited } from '../concurrency.js';
import { isAbortError, throwIfAborted } from '../abort.js';
import { OcistackError } from '../errors.js';
import type { BlobStore } from '../image/store.js';
import { MediaType, type Digest, type ImageManifest, type Platform } from '../image/types.js';
import type { ProgressListener } from '../progress/events.js';
import { rememberBlob } from '../registry/blob-homes.js';
import { pullBlob } from '../registry/blob-pull.js';
import { RegistrySession } from '../registry/client.js';
import { fetchManifest } from '../registry/manifest.js';
import { pushImage } from '../registry/push.js';
import { parseReference, type ImageReference } from '../registry/reference.js';
import type { RegistryOptions } from '../registry/types.js';
import { notACache, packCacheImage, unpackCacheRecords, type CacheMode } from './cache-image.js';
import { writeRecord, type CacheRecord } from './record.js';

/** A cache config larger than this is not fetched (a few thousand records are well below). */
const MAX_CACHE_CONFIG_BYTES = 64 * 1024 * 1024;

export interface RemoteRecordsOptions {
  /** The `--cache-from` references, in the order given (the first that has a key serves it). */
  refs: string[];
  store: BlobStore;
  /** Scoped by the caller: credentials and TLS exceptions for the cache registries. */
  registry: RegistryOptions;
  progress: ProgressListener;
  /** A progress step id for each ref's import. */
  stepId: () => string;
}

interface Found {
  record: CacheRecord;
  ref: ImageReference;
}

/** The records of the `--cache-from` caches, fetched at construction, their layers on demand. */
export class RemoteRecords {
  private readonly session: RegistrySession;
  private readonly found = new Map<Digest, Found>();
  private readonly fetching = new Map<Digest, Promise<CacheRecord | undefined>>();
  private readonly ready: Promise<void>;
  private readonly signal?: AbortSignal;

  constructor(private readonly opts: RemoteRecordsOptions) {
    this.session = new RegistrySession(opts.registry);
    this.signal = opts.registry.signal;
    // Never rejects: every failure is a warning.
    this.ready = Promise.all(opts.refs.map((r) => this.importRef(r))).then(() => undefined);
  }

  /** How many distinct keys the caches offer (after the import). */
  async size(): Promise<number> {
    await this.ready;
    return this.found.size;
  }

  /**
   * The record for `key` from an imported cache, its layers now in the
   * store and the record written locally; undefined when no cache has it or
   * its layers cannot be fetched (then the step runs).
   */
  async lookup(key: Digest): Promise<CacheRecord | undefined> {
    await this.ready;
    const hit = this.found.get(key);
    if (!hit) return undefined;
    let p = this.fetching.get(key);
    if (!p) {
      p = this.fetchRecord(hit);
      this.fetching.set(key, p);
    }
    return p;
  }

  /** Wait for the import to end (it may still run when no step missed) and close the connections. */
  async close(): Promise<void> {
    await this.ready;
    await Promise.allSettled(this.fetching.values());
    this.session.close();
  }

  private warn(message: string): void {
    this.opts.progress({ type: 'warning', message });
  }

  private async importRef(text: string): Promise<void> {
    const id = this.opts.stepId();
    const name = `importing cache manifest from ${text}`;
    const started = performance.now();
    this.opts.progress({ type: 'step', id, name, status: 'start' });
    try {
      const ref = parseReference(text);
      const client = this.session.client(ref.registry);
      const fetched = await fetchManifest(client, ref.repository, ref.digest ?? ref.tag!);
      if (fetched.kind !== 'manifest') throw notCache(ref, 'it is an image index');
      const manifest = fetched.parsed as ImageManifest;
      const why = notACache(manifest);
      if (why) throw notCache(ref, why);
      if (manifest.config.size > MAX_CACHE_CONFIG_BYTES) throw notCache(ref, `its config is ${manifest.config.size} bytes, over the ${MAX_CACHE_CONFIG_BYTES}-byte limit`);
      await pullBlob(client, ref.repository, manifest.config, this.opts.store, this.session.progress, this.signal);
      const config = await this.opts.store.readJson<unknown>(manifest.config.digest);
      const { records, dropped } = unpackCacheRecords(config, manifest);
      let added = 0;
      for (const r of records) {
        if (this.found.has(r.key)) continue;
        this.found.set(r.key, { record: r, ref });
        added++;
      }
      // A later push to another repository of this registry may mount these blobs.
      for (const l of manifest.layers) rememberBlob(ref.registry, ref.repository, l.digest);
      this.opts.progress({ type: 'info', message: `imported ${added} cache record${added === 1 ? '' : 's'} from ${ref}${dropped ? ` (${dropped} unusable, ignored)` : ''}` });
    } catch (e) {
      if (isAbortError(e)) {
        this.opts.progress({ type: 'step', id, name, status: 'error', error: (e as Error).message, durationMs: performance.now() - started });
        return;
      }
      this.warn(importWarning(text, e));
    }
    this.opts.progress({ type: 'step', id, name, status: 'done', durationMs: performance.now() - started });
  }

  private async fetchRecord({ record, ref }: Found): Promise<CacheRecord | undefined> {
    try {
      const client = this.session.client(ref.registry);
      await forEachLimited(record.layers, this.opts.registry.concurrency ?? 4, (l) =>
        pullBlob(client, ref.repository, { mediaType: l.mediaType, digest: l.digest, size: l.size }, this.opts.store, this.session.progress, this.signal), this.signal);
      // Local from now on: the next build hits without asking the registry.
      await writeRecord(this.opts.store.root, record).catch(() => undefined);
      return record;
    } catch (e) {
      throwIfAborted(this.signal);
      if (isAbortError(e)) throw e;
      this.warn(`cache ${ref}: cannot fetch the layers of "${record.description}" (${errorText(e)}); the step runs instead`);
      return undefined;
    }
  }
}

function notCache(ref: ImageReference, why: string): OcistackError {
  return new OcistackError(`${ref} is not an ocistack build cache: ${why}`, { code: 'NOT_A_CACHE', registry: ref.registry });
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function importWarning(ref: string, e: unknown): string {
  if (e instanceof OcistackError && e.code === 'NOT_FOUND') return `cache ${ref} does not exist (yet): nothing imported from it; the build goes on without it`;
  if (e instanceof OcistackError && e.code === 'NOT_A_CACHE') return `${e.message}; nothing imported from it`;
  return `cannot import cache from ${ref}: ${errorText(e)}${e instanceof OcistackError && e.hint ? ` (${e.hint})` : ''}; the build goes on without it`;
}

export interface ExportCacheOptions {
  ref: string;
  mode: CacheMode;
  records: CacheRecord[];
  platform: Platform;
  store: BlobStore;
  registry: RegistryOptions;
}

/**
 * Push the cache image of `records` to `ref`; returns the manifest digest.
 * Every blob it names must be in the store (the records' layers are: a hit
 * checked them, a step that ran wrote them).
 */
export async function exportCache(opts: ExportCacheOptions): Promise<Digest> {
  const image = packCacheImage(opts.records, opts.platform, opts.mode);
  await opts.store.putBytes(image.configBytes);
  const put = await opts.store.putBytes(image.manifestBytes);
  const res = await pushImage({
    store: opts.store,
    manifest: { mediaType: MediaType.OciManifest, digest: put.digest, size: put.size },
    tags: [opts.ref],
    registry: opts.registry,
  });
  return res.digest;
}

/** The error of a failed `--cache-to` export: names the registry and both ways out. */
export function exportError(ref: string, e: unknown): OcistackError {
  const registry = (e instanceof OcistackError && e.registry) || safeRegistry(ref);
  const cause = e instanceof OcistackError && e.hint ? `${e.message} (${e.hint})` : errorText(e);
  return new OcistackError(`cannot export the build cache to ${ref}: ${cause}`, {
    code: e instanceof OcistackError ? e.code : 'CACHE_EXPORT',
    registry,
    hint: `the image itself was built (and pushed, with --push); make ${registry ?? 'the cache registry'} reachable and writable for you ("ocistack login ${registry ?? 'REGISTRY'}"), or add ignore-error=true to --cache-to to let the build succeed without exporting`,
    exitCode: 1,
    cause: e,
  });
}

function safeRegistry(ref: string): string | undefined {
  try {
    return parseReference(ref).registry;
  } catch {
    return undefined;
  }
}
