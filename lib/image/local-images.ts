/**
 * Images built by ocistack, by name, in the blob cache: what lets
 * `ocistack build -t REF` be followed by `ocistack push REF`, as with docker
 * and Buildah.
 *
 * The cache root doubles as an OCI image layout: its `blobs/sha256` is the
 * BlobStore's, and `index.json` lists the tagged manifests with the full
 * normalised reference (`host/repo:tag`) as `org.opencontainers.image.ref.name`,
 * so `skopeo inspect oci:$CACHE:REF` can read them too. index.json is replaced
 * by rename under a lock, so concurrent builds never lose each other's tags.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import type { BlobStore } from './store.js';
import { MediaType, type Descriptor, type ImageIndex } from './types.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const LOCK_STALE_MS = 60_000;
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

/** Run `fn` holding the cache's index lock (a directory: mkdir is atomic). */
async function withIndexLock<T>(store: BlobStore, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(store.root, 'index.lock');
  await fsp.mkdir(store.root, { recursive: true });
  const start = Date.now();
  for (;;) {
    try {
      await fsp.mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = Date.now() - (await fsp.stat(lock).then((s) => s.mtimeMs, () => Date.now()));
      if (age > LOCK_STALE_MS) {
        await fsp.rm(lock, { recursive: true, force: true }); // left by a killed process
        continue;
      }
      if (Date.now() - start > LOCK_WAIT_MS) {
        throw new OcistackError(`the build cache ${store.root} is locked by another ocistack`, {
          code: 'CACHE_LOCKED',
          hint: `wait for the other build to finish, or remove ${lock} if no ocistack is running`,
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lock, { recursive: true, force: true });
  }
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
    const tmp = path.join(store.root, `.index.json.${process.pid}.${randomBytes(4).toString('hex')}`);
    await fsp.writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`);
    await fsp.rename(tmp, indexPath(store));
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
