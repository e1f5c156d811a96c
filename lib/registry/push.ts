/**
 * Pushing an image (or index) from the blob store to one or more tags.
 * Order per repository: every blob, then (for an index) every child manifest
 * by digest, then the top manifest once per tag. A tag is written only after
 * everything it points to is in the registry, so a failed push never leaves a
 * tag on a half-pushed image.
 *
 * HEAD first, so an unchanged image costs a few small requests: each tag is
 * looked up by HEAD before anything is sent, and a repository whose tags all
 * already point at the image's digest gets no blob request and no manifest
 * PUT at all (a registry only accepts a manifest whose blobs it has, so the
 * blobs are there). Otherwise each blob is HEADed before an upload
 * (blob-push.ts) and only the tags that point elsewhere are PUT.
 */
import { forEachLimited } from '../concurrency.js';
import { throwIfAborted } from '../abort.js';
import { OcistackError } from '../errors.js';
import { sha256 } from '../image/digest.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor, Digest, ImageIndex, ImageManifest } from '../image/types.js';
import { DEFAULT_CHUNK_SIZE, pushBlob, type BlobPushContext } from './blob-push.js';
import { withCredentialScope } from './credential-scope.js';
import { RegistrySession, responseError, type RegistryClient } from './client.js';
import { classifyManifest, MANIFEST_ACCEPT } from './manifest.js';
import { parseReference, type ImageReference } from './reference.js';
import type { RegistryOptions } from './types.js';

export interface PushImageOptions {
  store: BlobStore;
  /** The manifest or index to push; it and everything it references must be in the store. */
  manifest: Descriptor;
  /** Full references, e.g. `gitea.cnoe.localtest.me:8443/giteaadmin/app:1`; several registries/repositories allowed. */
  tags: string[];
  registry?: RegistryOptions;
  session?: RegistrySession;
}

export interface PushImageResult {
  /** Digest of the pushed manifest/index as the registry serves it (never the config's). */
  digest: Digest;
  /** `registry/repository:tag` for every tag written. */
  pushed: string[];
}

interface ManifestNode {
  desc: Descriptor;
  bytes: Buffer;
  mediaType: string;
  children: ManifestNode[];
  blobs: Descriptor[];
}

async function loadNode(store: BlobStore, desc: Descriptor): Promise<ManifestNode> {
  if (!(await store.has(desc.digest))) {
    throw new OcistackError(`manifest ${desc.digest} is not in the blob store ${store.root}`, { code: 'BLOB_MISSING', hint: 'build or pull the image again' });
  }
  const bytes = await store.readBytes(desc.digest);
  const c = classifyManifest(bytes, desc.mediaType, desc.digest);
  const node: ManifestNode = { desc, bytes, mediaType: c.mediaType, children: [], blobs: [] };
  if (c.kind === 'index') {
    for (const child of (c.parsed as ImageIndex).manifests) node.children.push(await loadNode(store, child));
  } else {
    const m = c.parsed as ImageManifest;
    node.blobs = [m.config, ...m.layers];
  }
  for (const b of node.blobs) {
    if (!(await store.has(b.digest))) {
      throw new OcistackError(`blob ${b.digest} of manifest ${desc.digest} is not in the blob store ${store.root}`, { code: 'BLOB_MISSING', hint: 'build or pull the image again' });
    }
  }
  return node;
}

function allBlobs(node: ManifestNode, out = new Map<Digest, Descriptor>()): Map<Digest, Descriptor> {
  for (const b of node.blobs) out.set(b.digest, b);
  for (const c of node.children) allBlobs(c, out);
  return out;
}

/** PUT a manifest; returns the digest the registry reports. */
async function putManifest(client: RegistryClient, repository: string, node: ManifestNode, reference: string, signal?: AbortSignal): Promise<Digest> {
  // The last moment to stop: after this PUT the tag exists.
  throwIfAborted(signal);
  const res = await client.request({
    method: 'PUT',
    url: `/v2/${repository}/manifests/${reference}`,
    headers: { 'Content-Type': node.mediaType, 'Content-Length': String(node.bytes.length) },
    body: () => node.bytes,
    scopes: [`repository:${repository}:pull,push`],
  });
  if (res.status !== 201 && res.status !== 200) {
    throw await responseError(client.registry, res, `cannot put manifest ${client.registry}/${repository}:${reference}`);
  }
  await res.arrayBuffer().catch(() => undefined);
  const header = res.headers.get('docker-content-digest');
  return (header && header.startsWith('sha256:') ? header : sha256(node.bytes)) as Digest;
}

/**
 * Whether `repository:tag` already resolves to `digest` (HEAD, Docker-Content-Digest).
 * An answer that says nothing for sure (no digest header, an error status) is
 * "no": the push then goes the long way, which is always correct.
 */
async function tagPointsAt(client: RegistryClient, repository: string, tag: string, digest: Digest): Promise<boolean> {
  const res = await client.request({
    method: 'HEAD',
    url: `/v2/${repository}/manifests/${tag}`,
    headers: { Accept: MANIFEST_ACCEPT },
    scopes: [`repository:${repository}:pull,push`],
  });
  await res.arrayBuffer().catch(() => undefined);
  return res.status === 200 && res.headers.get('docker-content-digest') === digest;
}

/** Push child manifests (depth first, by digest), then nothing else. */
async function putChildren(client: RegistryClient, repository: string, node: ManifestNode, signal?: AbortSignal): Promise<void> {
  for (const c of node.children) {
    await putChildren(client, repository, c, signal);
    await putManifest(client, repository, c, c.desc.digest, signal);
  }
}

/** Push a manifest or index and its blobs to every tag. */
export async function pushImage(opts: PushImageOptions): Promise<PushImageResult> {
  if (!opts.tags.length) throw new OcistackError('nothing to push: no destination tags', { code: 'USAGE', hint: 'name at least one destination, e.g. REGISTRY/owner/image:tag', exitCode: 2 });
  const refs = opts.tags.map((t) => parseReference(t));
  const groups = new Map<string, { base: ImageReference; refs: ImageReference[] }>();
  for (const r of refs) {
    const key = `${r.registry}/${r.repository}`;
    const g = groups.get(key);
    if (g) g.refs.push(r);
    else groups.set(key, { base: r, refs: [r] });
  }
  const root = await loadNode(opts.store, opts.manifest);
  const blobs = [...allBlobs(root).values()];
  // Explicit credentials are for the destinations' registries.
  const session = opts.session ?? new RegistrySession(withCredentialScope(opts.registry, refs.map((r) => r.registry)));
  const chunk = { size: opts.registry?.chunkSize ?? DEFAULT_CHUNK_SIZE };
  const signal = opts.registry?.signal ?? session.options.signal;
  const pushed: string[] = [];
  let digest: Digest | undefined;
  try {
    // One repository after the other, so later ones can mount blobs from earlier ones.
    for (const { base, refs: groupRefs } of groups.values()) {
      const client = session.client(base.registry);
      const ctx: BlobPushContext = { client, repository: base.repository, store: opts.store, progress: session.progress, chunk, signal };
      for (const r of groupRefs) {
        if (r.digest && r.digest !== root.desc.digest) {
          throw new OcistackError(`destination ${r} names digest ${r.digest}, but the image is ${root.desc.digest}`, { code: 'USAGE', registry: r.registry, hint: 'drop the @digest from the destination', exitCode: 2 });
        }
      }
      // Tags (and digest references) that already resolve to the image need nothing.
      const current = new Set<ImageReference>();
      for (const r of groupRefs) {
        throwIfAborted(signal);
        if (await tagPointsAt(client, base.repository, r.tag ?? r.digest!, root.desc.digest)) current.add(r);
      }
      if (current.size < groupRefs.length) {
        await forEachLimited(blobs, opts.registry?.concurrency ?? 4, (b) => pushBlob(ctx, b), signal);
        await putChildren(client, base.repository, root, signal);
      }
      for (const r of groupRefs) {
        const reference = r.tag ?? r.digest!;
        if (current.has(r)) {
          session.progress({ type: 'info', message: `${r} is already ${root.desc.digest}: nothing to push` });
          digest ??= root.desc.digest;
          pushed.push(`${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : `@${r.digest}`}`);
          continue;
        }
        const served = await putManifest(client, base.repository, root, reference, signal);
        if (served !== root.desc.digest) {
          session.progress({ type: 'warning', message: `${r.registry} reports digest ${served} for ${r}, expected ${root.desc.digest}` });
        }
        digest ??= served;
        pushed.push(`${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : `@${r.digest}`}`);
      }
    }
  } finally {
    if (!opts.session) session.close();
  }
  return { digest: digest!, pushed };
}
