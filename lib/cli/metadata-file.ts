/**
 * `ocistack build --metadata-file FILE`: what was built, as JSON, with the
 * keys `docker buildx build --metadata-file` writes for an image, so scripts
 * written for buildx read it unchanged:
 *  - `containerimage.digest`: the image manifest's digest (what the registry serves);
 *  - `containerimage.config.digest`: the config's digest (the image ID);
 *  - `containerimage.descriptor`: the manifest's descriptor (mediaType, digest, size);
 *  - `image.name`: the tags, comma-separated as buildx does (absent without -t);
 * and our own `ocistack.layers` (the layer descriptors, base first) and
 * `ocistack.pushed` (references pushed). buildx's `buildx.build.ref` and
 * `buildx.build.provenance` have no equivalent here and are left out.
 */
import type { BuildResult } from '../engine/options.js';

export function buildMetadata(result: BuildResult): Record<string, unknown> {
  const meta: Record<string, unknown> = {
    'containerimage.config.digest': result.configDigest,
    'containerimage.descriptor': { mediaType: result.manifest.mediaType, digest: result.manifestDigest, size: result.manifest.size },
    'containerimage.digest': result.manifestDigest,
  };
  if (result.tags.length) meta['image.name'] = result.tags.join(',');
  meta['ocistack.layers'] = result.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size }));
  meta['ocistack.pushed'] = result.pushed;
  return meta;
}
