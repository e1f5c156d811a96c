/**
 * Images built by ocistack, by name, in the blob cache: what lets
 * `ocistack build -t REF` be followed by `ocistack push REF`, as with docker
 * and Buildah.
 *
 * The cache root doubles as an OCI image layout: its `blobs/sha256` is the
 * BlobStore's, and `index.json` lists the tagged manifests with the full
 * normalised reference (`host/repo:tag`) as `org.opencontainers.image.ref.name`,
 * so `skopeo inspect oci:$CACHE:REF` can read them too. index.json is replaced
 * by rename under a lock (lib/lock.ts), so concurrent builds never lose each
 * other's tags.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import { withLock } from '../lock.js';
import { removeTemp, sweepStaleTemps, tempName, trackTemp, untrackTemp } from '../temp-files.js';
import type { BlobStore } from './store.js';
import { MediaType, type Descriptor, type ImageIndex } from './types.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const LOCK_WAIT_MS = 15_000;

function indexPath(store: BlobStore): string {
  return path.join(store.root, 'index.json');
}

async function readIndex(store: BlobStore): Promise<ImageIndex> {
  try {
    return JSON.parse(await fsp.readFile(indexPath(store), 'utf8')) as ImageIndex;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
    throw new OcistackError(`the build cache's image list ${indexPath(store)} is unreadable: ${(e as Error).message}`, {
      code: 'CACHE_CORRUPT',
      hint: 'delete that index.json (the blobs stay) and build again',
    });
  }
}

/**
 * Run `fn` holding the cache's index lock (lib/lock.ts: owner recorded,
 * taken atomically, recovered at once when its owner died).
 */
async function withIndexLock<T>(store: BlobStore, fn: () => Promise<T>): Promise<T> {
  return withLock(path.join(store.root, 'index.json.lock'), fn, { waitMs: LOCK_WAIT_MS, signal: store.signal, what: `the build cache ${store.root}` });
}

/**
 * Name a manifest (already in the store) with each of `refs` (normalised
 * references); an existing entry with the same name is replaced.
 */
export async function tagLocalImage(store: BlobStore, manifest: Descriptor, refs: string[]): Promise<void> {
  if (!refs.length) return;
  await withIndexLock(store, async () => {
    const index = await readIndex(store);
    const names = new Set(refs);
    const kept = index.manifests.filter((d) => !names.has(d.annotations?.[REF_NAME] ?? ''));
    const added = refs.map((ref) => ({ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, ...(manifest.platform ? { platform: manifest.platform } : {}), annotations: { [REF_NAME]: ref } }));
    const next: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...kept, ...added] };
    const layoutFile = path.join(store.root, 'oci-layout');
    await fsp.writeFile(layoutFile, JSON.stringify({ imageLayoutVersion: '1.0.0' }), { flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    await sweepStaleTemps(store.root, (n) => n.startsWith('.index.json.tmp-'));
    const tmp = path.join(store.root, tempName('.index.json.tmp'));
    trackTemp(tmp);
    try {
      await fsp.writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`);
      await fsp.rename(tmp, indexPath(store));
      untrackTemp(tmp);
    } catch (e) {
      await removeTemp(tmp);
      throw e;
    }
  });
}

/** The manifest named `ref` (normalised) in the cache, if it was built here and its blob is still there. */
export async function findLocalImage(store: BlobStore, ref: string): Promise<Descriptor | undefined> {
  const index = await readIndex(store);
  const d = [...index.manifests].reverse().find((m) => m.annotations?.[REF_NAME] === ref);
  if (!d || !(await store.has(d.digest))) return undefined;
  const { annotations: _names, ...descriptor } = d;
  return descriptor;
}

/** Every named image in the cache: `[ref, descriptor]`. */
export async function listLocalImages(store: BlobStore): Promise<[string, Descriptor][]> {
  const index = await readIndex(store);
  return index.manifests.filter((d) => d.annotations?.[REF_NAME]).map((d) => [d.annotations![REF_NAME]!, d]);
}
