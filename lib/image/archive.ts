/**
 * `docker-archive:FILE` — the tar `docker save` writes (and `docker load`
 * reads): `manifest.json` listing each image's config file, layer tars and
 * RepoTags. Both the classic layout (`<id>/layer.tar`, `<hex>.json`) and
 * Docker 25+'s OCI-layout-inside (`blobs/sha256/<hex>`) are read through
 * manifest.json.
 *
 * Reading imports an image into the blob store as an OCI image: config bytes
 * unchanged (so the image ID stays the same), layers gzip-compressed (already
 * compressed layers are kept), each layer checked against the config's diff_ids.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import pLimit from 'p-limit';
import * as tar from 'tar';
import { removeTemp, sweepStaleTemps, tempName, trackTemp } from '../temp-files.js';
import { OcistackError } from '../errors.js';
import { canonicalJson, digestHex } from './digest.js';
import type { BlobStore } from './store.js';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type ImageManifest } from './types.js';

export { parseArchiveRef } from './archive-ref.js';

interface ArchiveManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

function archiveError(file: string, msg: string, hint = 'the file must be a tar written by "docker save" or "skopeo copy ... docker-archive:FILE"'): OcistackError {
  return new OcistackError(`${file}: ${msg}`, { code: 'BAD_ARCHIVE', hint });
}

function normaliseTag(t: string): string {
  // RepoTags are familiar names (busybox:latest); compare in full form.
  const slash = t.indexOf('/');
  const first = slash >= 0 ? t.slice(0, slash) : '';
  let full = first && (first.includes('.') || first.includes(':') || first === 'localhost') ? t : `docker.io/${t}`;
  if (/^docker\.io\/[^/]+(:|$)/.test(full)) full = full.replace(/^docker\.io\//, 'docker.io/library/');
  if (!/:[\w][\w.-]*$/.test(full.slice(full.lastIndexOf('/')))) full += ':latest';
  return full;
}

/** Hash a stream's bytes as they pass. */
function hasher(): Transform & { result(): { digest: Digest; size: number } } {
  const h = createHash('sha256');
  let size = 0;
  const t = new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  }) as Transform & { result(): { digest: Digest; size: number } };
  t.result = () => ({ digest: `sha256:${h.digest('hex')}`, size });
  return t;
}

async function magic(file: string): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b;
  } finally {
    await fh.close();
  }
}

export interface ReadDockerArchiveResult {
  /** The OCI manifest now in the store. */
  descriptor: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  repoTags: string[];
}

/** Import one image of a docker-archive into the store. */
export async function readDockerArchive(opts: { file: string; store: BlobStore; ref?: string; index?: number }): Promise<ReadDockerArchiveResult> {
  const file = path.resolve(opts.file);
  try {
    await fsp.access(file);
  } catch {
    throw archiveError(opts.file, 'no such file', 'check the path after docker-archive:');
  }
  // Owner-named and registered (lib/temp-files.ts): removed on abort, swept after kill -9.
  const work = path.join(opts.store.root, 'tmp', tempName('archive'));
  trackTemp(work);
  await fsp.mkdir(work, { recursive: true });
  try {
    try {
      await tar.x({ file, cwd: work, strict: true, preservePaths: false });
    } catch (e) {
      throw archiveError(opts.file, `cannot read the tar: ${(e as Error).message}`);
    }
    let entries: ArchiveManifestEntry[];
    try {
      entries = JSON.parse(await fsp.readFile(path.join(work, 'manifest.json'), 'utf8')) as ArchiveManifestEntry[];
    } catch {
      throw archiveError(opts.file, 'has no readable manifest.json');
    }
    if (!Array.isArray(entries) || !entries.length) throw archiveError(opts.file, 'manifest.json lists no images');
    let entry: ArchiveManifestEntry | undefined;
    if (opts.index !== undefined) {
      entry = entries[opts.index];
      if (!entry) throw archiveError(opts.file, `has ${entries.length} images, no @${opts.index}`, `use @0 to @${entries.length - 1}`);
    } else if (opts.ref) {
      const want = normaliseTag(opts.ref);
      entry = entries.find((e) => (e.RepoTags ?? []).some((t) => normaliseTag(t) === want));
      if (!entry) {
        const all = entries.flatMap((e) => e.RepoTags ?? []);
        throw archiveError(opts.file, `has no image tagged ${opts.ref}`, `tags there: ${all.join(', ') || 'none'}`);
      }
    } else if (entries.length === 1) {
      entry = entries[0]!;
    } else {
      throw archiveError(opts.file, `holds ${entries.length} images`, `name one: docker-archive:${opts.file}:REPO:TAG or docker-archive:${opts.file}:@INDEX`);
    }
    const inside = (p: string) => {
      const abs = path.resolve(work, p);
      if (!abs.startsWith(work + path.sep)) throw archiveError(opts.file, `manifest.json points outside the archive: ${p}`);
      return abs;
    };
    const configBytes = await fsp.readFile(inside(entry.Config)).catch(() => {
      throw archiveError(opts.file, `lacks the config ${entry!.Config}`);
    });
    const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== entry.Layers.length) {
      throw archiveError(opts.file, `config lists ${diffIds.length} layers, manifest.json ${entry.Layers.length}`);
    }
    const cfg = await opts.store.putBytes(configBytes);
    const limit = pLimit(2);
    const layers = await Promise.all(
      entry.Layers.map((l, i) =>
        limit(async (): Promise<Descriptor> => {
          const src = inside(l);
          const m = await magic(src).catch(() => {
            throw archiveError(opts.file, `lacks the layer ${l}`);
          });
          const gz = m[0] === 0x1f && m[1] === 0x8b;
          if (m[0] === 0x28 && m[1] === 0xb5 && m[2] === 0x2f && m[3] === 0xfd) {
            throw archiveError(opts.file, `layer ${l} is zstd-compressed, which is not supported yet`, 'save the image with uncompressed or gzip layers');
          }
          const raw = hasher();
          let stored: { digest: Digest; size: number };
          if (gz) {
            // Keep the compressed bytes; hash the uncompressed stream alongside for the diff_id check.
            const check = pipeline(createReadStream(src), createGunzip(), raw, new PassThrough().resume());
            const put = opts.store.putStream(createReadStream(src));
            [stored] = await Promise.all([put, check]);
          } else {
            const out = new PassThrough();
            const put = opts.store.putStream(out);
            await pipeline(createReadStream(src), raw, createGzip(), out);
            stored = await put;
          }
          const { digest: diffId } = raw.result();
          if (diffId !== diffIds[i]) {
            throw archiveError(opts.file, `layer ${l} does not match the config's diff_id ${diffIds[i]} (got ${diffId})`, 'the archive is corrupted; save it again');
          }
          return { mediaType: MediaType.OciLayerGzip, digest: stored.digest, size: stored.size };
        }),
      ),
    );
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
      layers,
    };
    const put = await opts.store.putBytes(canonicalJson(manifest));
    return { descriptor: { mediaType: MediaType.OciManifest, digest: put.digest, size: put.size }, manifest, config, repoTags: entry.RepoTags ?? [] };
  } finally {
    await removeTemp(work);
  }
}

/**
 * Write one image from the store as a docker-archive (`docker load` format):
 * `<config hex>.json`, `<diff_id hex>/layer.tar` uncompressed, manifest.json
 * with `repoTags` (familiar names like `app:1`). Written to a temp file
 * beside `file` and renamed.
 */
export async function writeDockerArchive(opts: { file: string; store: BlobStore; manifest: Descriptor; repoTags?: string[] }): Promise<void> {
  const file = path.resolve(opts.file);
  const m = await opts.store.readJson<ImageManifest & { manifests?: unknown }>(opts.manifest.digest);
  if (!m.config || !Array.isArray(m.layers)) {
    throw new OcistackError('docker-archive holds single images, not multi-platform indexes', { code: 'USAGE', hint: 'copy one platform (leave out --all)', exitCode: 2 });
  }
  const config = await opts.store.readJson<ImageConfig>(m.config.digest);
  const parent = path.dirname(file);
  await sweepStaleTemps(parent, (n) => n.startsWith(`.${path.basename(file)}.d-`) || n.startsWith(`${path.basename(file)}.tmp-`));
  const dir = path.join(parent, tempName(`.${path.basename(file)}.d`));
  const tmpTar = path.join(parent, tempName(`${path.basename(file)}.tmp`));
  trackTemp(dir);
  trackTemp(tmpTar);
  await fsp.mkdir(dir, { recursive: true });
  try {
    const configName = `${digestHex(m.config.digest)}.json`;
    await fsp.copyFile(opts.store.path(m.config.digest), path.join(dir, configName));
    const layerNames: string[] = [];
    for (const [i, l] of m.layers.entries()) {
      const diffId = config.rootfs.diff_ids[i];
      const name = `${digestHex(diffId ?? l.digest)}/layer.tar`;
      await fsp.mkdir(path.join(dir, path.dirname(name)), { recursive: true });
      const out = createWriteStream(path.join(dir, name));
      if (l.mediaType.endsWith('gzip')) await pipeline(opts.store.createReadStream(l.digest), createGunzip(), out);
      else if (l.mediaType.endsWith('zstd')) throw new OcistackError(`layer ${l.digest} is zstd-compressed; docker-archive output needs gzip or plain layers`, { code: 'USAGE', hint: 'push to a registry or oci: instead', exitCode: 2 });
      else await pipeline(opts.store.createReadStream(l.digest), out);
      layerNames.push(name);
    }
    const manifestJson = [{ Config: configName, RepoTags: opts.repoTags ?? [], Layers: layerNames }];
    await fsp.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifestJson));
    await tar.c({ cwd: dir, file: tmpTar, portable: true }, ['manifest.json', configName, ...new Set(layerNames.map((n) => path.dirname(n)))]);
    await fsp.rename(tmpTar, file);
  } finally {
    await removeTemp(dir);
    await removeTemp(tmpTar);
  }
}
