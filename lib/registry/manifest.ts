/**
 * Fetching and classifying manifests: OCI index/manifest and Docker
 * list/v2s2, verified against the digest they were asked by.
 */
import { OcistackError } from '../errors.js';
import { sha256 } from '../image/digest.js';
import { MediaType, type Digest, type ImageIndex, type ImageManifest } from '../image/types.js';
import { responseError, type RegistryClient } from './client.js';

/** What we accept, best first. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

/** Manifests larger than this are refused (the distribution spec's limit is 4 MiB). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  kind: 'index' | 'manifest';
  parsed: ImageIndex | ImageManifest;
}

export function isIndexMediaType(mt: string): boolean {
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}

/** Classify manifest bytes; `headerType` is the Content-Type the registry sent. */
export function classifyManifest(bytes: Buffer, headerType: string | undefined, where: string, registry?: string): Omit<FetchedManifest, 'digest' | 'bytes'> {
  let parsed: { schemaVersion?: number; mediaType?: string; manifests?: unknown; config?: unknown; layers?: unknown };
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new OcistackError(`manifest of ${where} is not JSON`, { code: 'BAD_MANIFEST', registry, hint: 'the registry served something that is not a manifest' });
  }
  if (parsed.schemaVersion === 1) {
    throw new OcistackError(`${where} is a Docker schema 1 manifest, which is not supported`, { code: 'BAD_MANIFEST', registry, hint: 'push the image again with a current client so it gets a schema 2 or OCI manifest' });
  }
  const header = headerType?.split(';')[0]?.trim();
  const mediaType = parsed.mediaType ?? (header && header !== 'application/json' ? header : Array.isArray(parsed.manifests) ? MediaType.OciIndex : MediaType.OciManifest);
  if (Array.isArray(parsed.manifests)) return { mediaType, kind: 'index', parsed: parsed as ImageIndex };
  if (parsed.config && Array.isArray(parsed.layers)) return { mediaType, kind: 'manifest', parsed: parsed as ImageManifest };
  throw new OcistackError(`manifest of ${where} has neither "manifests" nor "config"/"layers" (media type ${mediaType})`, { code: 'BAD_MANIFEST', registry, hint: 'this is not a container image' });
}

/** GET a manifest by tag or digest and verify it. */
export async function fetchManifest(client: RegistryClient, repository: string, reference: string): Promise<FetchedManifest> {
  const where = `${client.registry}/${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  const res = await client.request({
    method: 'GET',
    url: `/v2/${repository}/manifests/${reference}`,
    headers: { Accept: MANIFEST_ACCEPT },
    scopes: [`repository:${repository}:pull`],
  });
  if (!res.ok) throw await responseError(client.registry, res, `cannot get manifest ${where}`);
  const len = Number(res.headers.get('content-length') ?? 0);
  if (len > MAX_MANIFEST_BYTES) {
    throw new OcistackError(`manifest of ${where} is ${len} bytes, over the 4 MiB limit`, { code: 'BAD_MANIFEST', registry: client.registry, hint: 'this is not a normal image manifest' });
  }
  // Bounded also when the answer comes chunked, without Content-Length.
  const bytes = Buffer.from(await res.arrayBuffer(MAX_MANIFEST_BYTES, `manifest of ${where}`));
  const digest = sha256(bytes);
  if (reference.startsWith('sha256:') && digest !== reference) {
    throw new OcistackError(`manifest of ${where} does not match its digest (got ${digest})`, { code: 'DIGEST_MISMATCH', registry: client.registry, hint: 'the registry served different content than asked for; check the registry' });
  }
  const headerDigest = res.headers.get('docker-content-digest');
  if (headerDigest && headerDigest.startsWith('sha256:') && headerDigest !== digest) {
    throw new OcistackError(`manifest of ${where}: Docker-Content-Digest ${headerDigest} does not match its bytes (${digest})`, { code: 'DIGEST_MISMATCH', registry: client.registry, hint: 'a proxy may have altered the manifest; check the registry and proxies' });
  }
  return { bytes, digest, ...classifyManifest(bytes, res.headers.get('content-type') ?? undefined, where, client.registry) };
}
