/**
 * The registry cache's format: instruction-cache records (lib/cache/record.ts)
 * packed into an ordinary OCI image, and read back out of one.
 *
 * Why an ordinary image and not an OCI artifact (BuildKit's cache manifest
 * with its own config media type): Gitea's registry, the one IDPBuilder
 * ships, refuses manifests whose config media type or artifact type it does
 * not know. So the cache is
 *
 *   manifest  application/vnd.oci.image.manifest.v1+json, annotations
 *             `dev.ocistack.cache.version` / `.mode` / `.records`
 *   config    application/vnd.oci.image.config.v1+json: a valid image config
 *             (architecture, os, rootfs.diff_ids of the layers) with the
 *             records as the extra field `ocistack.cache` (image-spec lets a
 *             config carry fields it does not define; every registry stores
 *             the config as an opaque blob)
 *   layers    every layer the records name, once each, in record order
 *
 * so every registry that takes images takes the cache, `skopeo inspect`
 * shows it, and the cache's layers are blobs of its own repository that a
 * client may fetch by digest. The image is not meant to be run: its layers
 * are step deltas of possibly several stages stacked together.
 *
 * The bytes depend on the records only (no timestamp of the export), so an
 * unchanged build exports the same manifest digest and its push is a HEAD.
 */
import { canonicalJson, isDigest, sha256 } from '../image/digest.js';
import { MediaType, type Descriptor, type ImageConfig, type ImageManifest, type Platform } from '../image/types.js';
import { parseRecord, type CacheRecord } from './record.js';

/** Version of the `ocistack.cache` field; a cache of another version is ignored with a warning. */
export const CACHE_FORMAT_VERSION = 1;
/** The config's extra field holding the records. */
export const CACHE_CONFIG_FIELD = 'ocistack.cache';
export const CACHE_ANNOTATION = {
  version: 'dev.ocistack.cache.version',
  mode: 'dev.ocistack.cache.mode',
  records: 'dev.ocistack.cache.records',
  description: 'org.opencontainers.image.description',
} as const;

export type CacheMode = 'min' | 'max';

/** The image config of a cache: an image config plus the records. */
export interface CacheConfig extends ImageConfig {
  [CACHE_CONFIG_FIELD]: { version: typeof CACHE_FORMAT_VERSION; records: CacheRecord[] };
}

export interface CacheImage {
  configBytes: Buffer;
  manifestBytes: Buffer;
  manifest: ImageManifest;
}

/** Pack `records` (deduplicated by key, order kept) into a cache image for `platform`. */
export function packCacheImage(records: CacheRecord[], platform: Platform, mode: CacheMode): CacheImage {
  const byKey = new Map<string, CacheRecord>();
  for (const r of records) if (!byKey.has(r.key)) byKey.set(r.key, r);
  const kept = [...byKey.values()];
  const layers: Descriptor[] = [];
  const diffIds: ImageConfig['rootfs']['diff_ids'] = [];
  const seen = new Set<string>();
  for (const r of kept) {
    for (const l of r.layers) {
      if (seen.has(l.digest)) continue;
      seen.add(l.digest);
      layers.push({ mediaType: l.mediaType, digest: l.digest, size: l.size });
      diffIds.push(l.diffId);
    }
  }
  const config: CacheConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: diffIds },
    [CACHE_CONFIG_FIELD]: { version: CACHE_FORMAT_VERSION, records: kept },
  };
  const configBytes = canonicalJson(config);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha256(configBytes), size: configBytes.length },
    layers,
    annotations: {
      [CACHE_ANNOTATION.version]: String(CACHE_FORMAT_VERSION),
      [CACHE_ANNOTATION.mode]: mode,
      [CACHE_ANNOTATION.records]: String(kept.length),
      [CACHE_ANNOTATION.description]: 'ocistack build cache (instruction cache records in the config field "ocistack.cache"); not a runnable image',
    },
  };
  return { configBytes, manifestBytes: canonicalJson(manifest), manifest };
}

/** Why a manifest is not a cache this version can read, or undefined when it is one. */
export function notACache(manifest: ImageManifest): string | undefined {
  if (manifest.config?.mediaType !== MediaType.OciConfig) return `its config is ${manifest.config?.mediaType ?? 'missing'}, not an OCI image config`;
  const v = manifest.annotations?.[CACHE_ANNOTATION.version];
  if (v === undefined) return 'it has no dev.ocistack.cache.version annotation (an ordinary image, not an ocistack cache)';
  if (v !== String(CACHE_FORMAT_VERSION)) return `its cache format is version ${v}; this ocistack reads version ${CACHE_FORMAT_VERSION}`;
  return undefined;
}

/**
 * The usable records of a cache config: well formed, and naming only layers
 * the manifest lists with the same size and media type (those are the blobs
 * the cache repository is known to hold). Others are dropped: a miss, never
 * an error.
 */
export function unpackCacheRecords(config: unknown, manifest: ImageManifest): { records: CacheRecord[]; dropped: number } {
  const field = (config as Record<string, unknown> | null)?.[CACHE_CONFIG_FIELD] as { version?: unknown; records?: unknown } | undefined;
  if (!field || field.version !== CACHE_FORMAT_VERSION || !Array.isArray(field.records)) return { records: [], dropped: 0 };
  const listed = new Map(manifest.layers.filter((l) => isDigest(l.digest)).map((l) => [l.digest, l]));
  const records: CacheRecord[] = [];
  let dropped = 0;
  for (const raw of field.records) {
    const r = parseRecord(JSON.stringify(raw));
    if (!r || !r.layers.every((l) => listed.get(l.digest)?.size === l.size && listed.get(l.digest)?.mediaType === l.mediaType)) {
      dropped++;
      continue;
    }
    records.push(r);
  }
  return { records, dropped };
}
