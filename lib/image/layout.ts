/**
 * OCI image layouts on disk (`oci:DIR[:TAG]`): writing images from the blob
 * store into a layout, and reading a layout's image into the store.
 *
 * Writing never leaves a half-written layout: a new layout is assembled in a
 * temp dir next to `dir` and renamed into place; an existing layout gets each
 * missing blob by temp file + rename, and `index.json` (the only file that
 * makes anything reachable) is replaced last, also by rename.
 *
 * Temp names carry their owner process (lib/temp-files.ts) and are
 * registered while they exist, so an interrupted write removes them, and a
 * later write to the same destination sweeps those of dead processes
 * (kill -9): staging dirs `.NAME.tmp-*` beside the layout, `*.tmp-*` blobs
 * and `.index.json.tmp-*` inside it.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { throwIfAborted } from '../abort.js';
import { OcistackError } from '../errors.js';
import { removeTemp, sweepStaleTemps, tempName, trackTemp, untrackTemp } from '../temp-files.js';
import { digestHex, isDigest } from './digest.js';
import type { BlobStore } from './store.js';
import { MediaType, type Descriptor, type Digest, type ImageIndex, type ImageManifest } from './types.js';

/** Annotation naming a manifest's tag in index.json. */
export const REF_NAME = 'org.opencontainers.image.ref.name';
const LAYOUT_FILE = { imageLayoutVersion: '1.0.0' };

export interface WriteOciLayoutOptions {
  dir: string;
  store: BlobStore;
  /** Manifests (or indexes) to list in index.json; `tag` becomes the ref.name annotation. */
  manifests: { descriptor: Descriptor; tag?: string }[];
  /** Stop (and remove what was staged) when aborted. */
  signal?: AbortSignal;
}

/** Parse `oci:DIR[:TAG]` (without the `oci:` prefix): the tag is after the last ':' that is not part of a path. */
export function parseLayoutRef(spec: string): { dir: string; tag?: string } {
  const c = spec.lastIndexOf(':');
  if (c > 0 && !spec.slice(c).includes('/')) return { dir: spec.slice(0, c), tag: spec.slice(c + 1) || undefined };
  return { dir: spec };
}

/** Every digest reachable from a descriptor (itself, children, configs, layers). */
export async function reachableBlobs(store: BlobStore, desc: Descriptor, out = new Map<Digest, Descriptor>()): Promise<Map<Digest, Descriptor>> {
  if (out.has(desc.digest)) return out;
  if (!(await store.has(desc.digest))) {
    throw new OcistackError(`blob ${desc.digest} is not in the blob store ${store.root}`, { code: 'BLOB_MISSING', hint: 'build or pull the image again' });
  }
  out.set(desc.digest, desc);
  const isManifestLike = desc.mediaType.includes('manifest') || desc.mediaType.includes('index') || desc.mediaType === 'application/json';
  if (!isManifestLike) return out;
  const j = await store.readJson<Partial<ImageIndex & ImageManifest>>(desc.digest);
  if (Array.isArray(j.manifests)) for (const m of j.manifests) await reachableBlobs(store, m, out);
  if (j.config) await reachableBlobs(store, j.config, out);
  if (Array.isArray(j.layers)) {
    for (const l of j.layers) {
      // Foreign (non-distributable) layers may be absent; they are fetched from their urls.
      if (l.urls?.length && !(await store.has(l.digest))) continue;
      await reachableBlobs(store, l, out);
    }
  }
  return out;
}

/** Copy a blob into `blobsDir` unless present: hard link when possible, else copy; by temp + rename. */
async function placeBlob(store: BlobStore, digest: Digest, blobsDir: string, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  const dest = path.join(blobsDir, digestHex(digest));
  if (fs.existsSync(dest)) return;
  const tmp = path.join(blobsDir, tempName(`${digestHex(digest)}.tmp`));
  trackTemp(tmp);
  try {
    try {
      await fsp.link(store.path(digest), tmp);
    } catch {
      await fsp.copyFile(store.path(digest), tmp);
    }
    await fsp.rename(tmp, dest);
    untrackTemp(tmp);
  } catch (e) {
    await removeTemp(tmp);
    throw e;
  }
}

async function readIndex(dir: string): Promise<ImageIndex | undefined> {
  try {
    return JSON.parse(await fsp.readFile(path.join(dir, 'index.json'), 'utf8')) as ImageIndex;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OcistackError(`${dir}/index.json is not valid JSON: ${(e as Error).message}`, { code: 'BAD_LAYOUT', hint: 'point at an OCI image layout directory' });
  }
}

function entryFor(m: { descriptor: Descriptor; tag?: string }): Descriptor {
  const { descriptor, tag } = m;
  const d: Descriptor = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
  if (descriptor.platform) d.platform = descriptor.platform;
  const annotations = { ...(descriptor.annotations ?? {}) };
  if (tag) annotations[REF_NAME] = tag;
  else delete annotations[REF_NAME];
  if (Object.keys(annotations).length) d.annotations = annotations;
  return d;
}

/** Write (or add to) an OCI image layout. */
export async function writeOciLayout(opts: WriteOciLayoutOptions): Promise<void> {
  const dir = path.resolve(opts.dir);
  const blobs = new Map<Digest, Descriptor>();
  for (const m of opts.manifests) await reachableBlobs(opts.store, m.descriptor, blobs);
  const existing = await readIndex(dir);
  const dirExists = fs.existsSync(dir);
  if (dirExists && !existing) {
    const entries = await fsp.readdir(dir);
    if (entries.length) {
      throw new OcistackError(`${dir} exists and is not an OCI image layout`, { code: 'BAD_LAYOUT', hint: 'write to a new or empty directory, or to an existing OCI layout' });
    }
  }
  const tags = new Set(opts.manifests.map((m) => m.tag).filter(Boolean));
  const kept = (existing?.manifests ?? []).filter((d) => !tags.has(d.annotations?.[REF_NAME]) && !opts.manifests.some((m) => !m.tag && m.descriptor.digest === d.digest && !d.annotations?.[REF_NAME]));
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...kept, ...opts.manifests.map(entryFor)] };
  if (existing?.annotations) index.annotations = existing.annotations;
  const indexBytes = JSON.stringify(index, null, 2) + '\n';

  if (!existing) {
    // New layout: build it beside `dir`, then one rename makes it appear whole.
    const parent = path.dirname(dir);
    await fsp.mkdir(parent, { recursive: true });
    const stagingPrefix = `.${path.basename(dir)}.tmp`;
    await sweepStaleTemps(parent, (n) => n.startsWith(`${stagingPrefix}-`));
    const tmp = path.join(parent, tempName(stagingPrefix));
    trackTemp(tmp);
    try {
      const blobsDir = path.join(tmp, 'blobs', 'sha256');
      await fsp.mkdir(blobsDir, { recursive: true });
      await fsp.writeFile(path.join(tmp, 'oci-layout'), JSON.stringify(LAYOUT_FILE));
      for (const d of blobs.keys()) await placeBlob(opts.store, d, blobsDir, opts.signal);
      await fsp.writeFile(path.join(tmp, 'index.json'), indexBytes);
      throwIfAborted(opts.signal);
      if (dirExists) await fsp.rmdir(dir); // empty (checked above)
      await fsp.rename(tmp, dir);
      untrackTemp(tmp);
    } catch (e) {
      await removeTemp(tmp);
      throw e;
    }
    return;
  }
  // Existing layout: blobs first (unreferenced until index.json changes), index.json last.
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  await fsp.mkdir(blobsDir, { recursive: true });
  await sweepStaleTemps(blobsDir, (n) => n.includes('.tmp-'));
  await sweepStaleTemps(dir, (n) => n.startsWith('.index.json.tmp-'));
  if (!fs.existsSync(path.join(dir, 'oci-layout'))) await fsp.writeFile(path.join(dir, 'oci-layout'), JSON.stringify(LAYOUT_FILE));
  for (const d of blobs.keys()) await placeBlob(opts.store, d, blobsDir, opts.signal);
  throwIfAborted(opts.signal);
  const tmpIndex = path.join(dir, tempName('.index.json.tmp'));
  trackTemp(tmpIndex);
  try {
    await fsp.writeFile(tmpIndex, indexBytes);
    await fsp.rename(tmpIndex, path.join(dir, 'index.json'));
    untrackTemp(tmpIndex);
  } catch (e) {
    await removeTemp(tmpIndex);
    throw e;
  }
}

export interface ReadOciLayoutOptions {
  dir: string;
  /** The ref.name to pick; may be omitted when the layout lists exactly one manifest. */
  tag?: string;
  store: BlobStore;
}

export interface ReadOciLayoutResult {
  /** The chosen manifest or index, now in the store with everything it references. */
  descriptor: Descriptor;
  tag?: string;
}

/**
 * Import the image named `tag` of an OCI layout into the blob store, each
 * blob verified against its digest on the way in.
 */
export async function readOciLayout(opts: ReadOciLayoutOptions): Promise<ReadOciLayoutResult> {
  const dir = path.resolve(opts.dir);
  const index = await readIndex(dir);
  if (!index) {
    throw new OcistackError(`${dir} is not an OCI image layout (no index.json)`, { code: 'BAD_LAYOUT', hint: 'point oci: at a directory written by ocistack, skopeo, buildah or umoci' });
  }
  const list = index.manifests ?? [];
  let chosen: Descriptor | undefined;
  if (opts.tag !== undefined) {
    chosen = list.find((d) => d.annotations?.[REF_NAME] === opts.tag) ?? (isDigest(opts.tag) ? list.find((d) => d.digest === opts.tag) : undefined);
    if (!chosen) {
      const tags = list.map((d) => d.annotations?.[REF_NAME]).filter(Boolean);
      throw new OcistackError(`${dir} has no image tagged "${opts.tag}"`, { code: 'NOT_FOUND', hint: tags.length ? `tags there: ${tags.join(', ')}` : 'the layout has no tagged images; leave out the tag' });
    }
  } else if (list.length === 1) {
    chosen = list[0];
  } else {
    const tags = list.map((d) => d.annotations?.[REF_NAME] ?? d.digest);
    throw new OcistackError(`${dir} holds ${list.length} images; say which with oci:${opts.dir}:TAG`, { code: 'USAGE', hint: `choose one of: ${tags.join(', ') || 'none'}`, exitCode: 2 });
  }
  await importTree(dir, opts.store, chosen!);
  return { descriptor: { mediaType: chosen!.mediaType, digest: chosen!.digest, size: chosen!.size, ...(chosen!.platform ? { platform: chosen!.platform } : {}) }, tag: chosen!.annotations?.[REF_NAME] };
}

async function importBlob(dir: string, store: BlobStore, d: Descriptor): Promise<void> {
  if (await store.has(d.digest)) return;
  const file = path.join(dir, 'blobs', 'sha256', digestHex(d.digest));
  if (!fs.existsSync(file)) {
    throw new OcistackError(`${dir} lacks blob ${d.digest}`, { code: 'BAD_LAYOUT', hint: 'the layout is incomplete; write it again' });
  }
  await store.putStream(fs.createReadStream(file), d.digest, d.size);
}

async function importTree(dir: string, store: BlobStore, d: Descriptor): Promise<void> {
  await importBlob(dir, store, d);
  const j = await store.readJson<Partial<ImageIndex & ImageManifest>>(d.digest);
  if (Array.isArray(j.manifests)) for (const m of j.manifests) await importTree(dir, store, m);
  if (j.config) await importBlob(dir, store, j.config);
  for (const l of j.layers ?? []) {
    if (l.urls?.length && !fs.existsSync(path.join(dir, 'blobs', 'sha256', digestHex(l.digest)))) continue;
    await importBlob(dir, store, l);
  }
}
