/**
 * `ocistack build --metadata-file FILE`: what was built, as JSON, with the
 * keys `docker buildx build --metadata-file` writes for an image, so scripts
 * written for buildx read it unchanged:
 *  - `containerimage.digest`: the image manifest's digest (what the registry serves);
 *  - `containerimage.config.digest`: the config's digest (the image ID);
 *  - `containerimage.descriptor`: the manifest's descriptor (mediaType, digest, size);
 *  - `image.name`: the tags, comma-separated as buildx does (absent without -t);
 * and our own keys:
 *  - `ocistack.layers`: the layer descriptors, base first;
 *  - `ocistack.pushed`: references pushed;
 *  - `ocistack.size`: bytes of config + layers (compressed, as pushed);
 *  - `ocistack.tags`: the tags, as a list;
 *  - `ocistack.outputs`: the `--output`s written (type, dest);
 *  - `ocistack.steps`: every step in the order it finished (id, stage, name,
 *    cached, durationMs), and `ocistack.cache` the count of cached steps of all.
 * buildx's `buildx.build.ref` and
 * `buildx.build.provenance` have no equivalent here and are left out.
 */
import type { BuildOutput, BuildResult } from '../engine/options.js';

export function buildMetadata(result: BuildResult, extra: { outputs?: BuildOutput[] } = {}): Record<string, unknown> {
  const meta: Record<string, unknown> = {
    'containerimage.config.digest': result.configDigest,
    'containerimage.descriptor': { mediaType: result.manifest.mediaType, digest: result.manifestDigest, size: result.manifest.size },
    'containerimage.digest': result.manifestDigest,
  };
  if (result.tags.length) meta['image.name'] = result.tags.join(',');
  meta['ocistack.layers'] = result.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
  meta['ocistack.pushed'] = result.pushed;
  if (result.size !== undefined) meta['ocistack.size'] = result.size;
  meta['ocistack.tags'] = result.tags;
  meta['ocistack.outputs'] = (extra.outputs ?? []).map((o) => ({ type: o.type, dest: o.dest }));
  const steps = result.steps ?? [];
  meta['ocistack.steps'] = steps.map((s) => ({ id: s.id, ...(s.stage !== undefined ? { stage: s.stage } : {}), name: s.name, cached: s.cached, durationMs: Math.round(s.durationMs * 1000) / 1000 }));
  meta['ocistack.cache'] = { steps: steps.length, cached: steps.filter((s) => s.cached).length };
  return meta;
}
