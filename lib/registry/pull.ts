/**
 * Pulling an image: manifest negotiation, platform selection, then config
 * and layers into the shared blob store, several at once, each verified.
 */
import { forEachLimited } from '../concurrency.js';
import { OcistackError } from '../errors.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, Platform } from '../image/types.js';
import { rememberBlob } from './blob-homes.js';
import { pullBlob } from './blob-pull.js';
import { RegistrySession, type RegistryClient } from './client.js';
import { fetchManifest, isIndexMediaType } from './manifest.js';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from './platform.js';
import { parseReference, type ImageReference } from './reference.js';
import type { RegistryOptions } from './types.js';
import { withCredentialScope } from './credential-scope.js';

export interface PullImageOptions {
  /** Image reference, e.g. `gitea.cnoe.localtest.me:8443/giteaadmin/app:1`. */
  ref: string;
  store: BlobStore;
  /** `os/arch[/variant]`; default this machine's linux platform. */
  platform?: string;
  registry?: RegistryOptions;
  /** Reuse a session (tokens, connections) across calls. */
  session?: RegistrySession;
}

export interface PullImageResult {
  ref: ImageReference;
  /** Digest of the image manifest (for a multi-platform image: the chosen platform's). */
  manifestDigest: Digest;
  /** Descriptor of the image manifest, as stored (media type, size, platform when chosen from an index). */
  manifestDescriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  configDescriptor: Descriptor;
  /** The index the manifest was chosen from, when the reference named one. */
  indexDigest?: Digest;
  indexDescriptor?: Descriptor;
}

/**
 * Pull one image (one platform) into the store. The manifest bytes (and the
 * index's, when there is one) are stored unchanged next to config and layers.
 */
export async function pullImage(opts: PullImageOptions): Promise<PullImageResult> {
  const ref = parseReference(opts.ref);
  // The image being pulled is the target: explicit credentials are for its registry.
  const session = opts.session ?? new RegistrySession(withCredentialScope(opts.registry, [ref.registry]));
  try {
    const client = session.client(ref.registry);
    const want: Platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
    let fetched = await fetchManifest(client, ref.repository, ref.digest ?? ref.tag!);
    let indexDescriptor: Descriptor | undefined;
    let platform: Platform | undefined;
    if (fetched.kind === 'index') {
      await opts.store.putBytes(fetched.bytes, fetched.digest);
      indexDescriptor = { mediaType: fetched.mediaType, digest: fetched.digest, size: fetched.bytes.length };
      const chosen = selectManifest((fetched.parsed as ImageIndex).manifests, want, ref.toString(), !!opts.platform && opts.platform.split('/').length === 3);
      platform = chosen.platform;
      fetched = await fetchManifest(client, ref.repository, chosen.digest);
      if (fetched.kind !== 'manifest') {
        throw new OcistackError(`${ref} for ${formatPlatform(want)} is a nested index, which is not supported`, { code: 'BAD_MANIFEST', registry: ref.registry, hint: 'pull the inner index by digest' });
      }
    }
    const manifest = fetched.parsed as ImageManifest;
    await opts.store.putBytes(fetched.bytes, fetched.digest);
    const result = await pullManifestBlobs(client, ref.repository, manifest, opts.store, session, opts.registry?.concurrency);
    if (!indexDescriptor && (result.config.os !== want.os || result.config.architecture !== want.architecture)) {
      session.progress({ type: 'warning', message: `${ref} is ${result.config.os}/${result.config.architecture}, not ${formatPlatform(want)}` });
    }
    return {
      ref,
      manifestDigest: fetched.digest,
      manifestDescriptor: { mediaType: fetched.mediaType, digest: fetched.digest, size: fetched.bytes.length, ...(platform ? { platform } : {}) },
      manifest,
      config: result.config,
      configDescriptor: manifest.config,
      ...(indexDescriptor ? { indexDigest: indexDescriptor.digest, indexDescriptor } : {}),
    };
  } finally {
    if (!opts.session) session.close();
  }
}

/** Config and layers of one manifest into the store, concurrently. */
export async function pullManifestBlobs(
  client: RegistryClient,
  repository: string,
  manifest: ImageManifest,
  store: BlobStore,
  session: RegistrySession,
  concurrency = 4,
): Promise<{ config: ImageConfig }> {
  const blobs = [manifest.config, ...manifest.layers];
  const signal = session.options.signal;
  await forEachLimited(blobs, concurrency, async (d) => {
    await pullBlob(client, repository, d, store, session.progress, signal);
    rememberBlob(client.registry, repository, d.digest);
  }, signal);
  const config = await store.readJson<ImageConfig>(manifest.config.digest);
  return { config };
}

/**
 * Pull everything a manifest or index references (all platforms), for copies
 * that keep an index whole. Returns the top descriptor.
 */
export async function pullAll(opts: { ref: string; store: BlobStore; registry?: RegistryOptions; session?: RegistrySession }): Promise<{ ref: ImageReference; descriptor: Descriptor }> {
  const ref = parseReference(opts.ref);
  // The image being pulled is the target: explicit credentials are for its registry.
  const session = opts.session ?? new RegistrySession(withCredentialScope(opts.registry, [ref.registry]));
  try {
    const client = session.client(ref.registry);
    const top = await fetchManifest(client, ref.repository, ref.digest ?? ref.tag!);
    const walk = async (f: typeof top): Promise<void> => {
      if (f.kind === 'index') {
        for (const child of (f.parsed as ImageIndex).manifests) {
          if (!isIndexMediaType(child.mediaType) && !child.mediaType.includes('manifest')) continue;
          const c = await fetchManifest(client, ref.repository, child.digest);
          await walk(c);
        }
      } else {
        await pullManifestBlobs(client, ref.repository, f.parsed as ImageManifest, opts.store, session, opts.registry?.concurrency);
      }
      await opts.store.putBytes(f.bytes, f.digest);
    };
    await walk(top);
    return { ref, descriptor: { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length } };
  } finally {
    if (!opts.session) session.close();
  }
}
