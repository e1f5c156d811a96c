/**
 * `--output type=docker,dest=FILE.tar`: the tar `docker save` writes and
 * `docker load`, `podman load`, `kind load image-archive` (containerd's
 * import) and `skopeo copy docker-archive:FILE` read. `manifest.json` lists
 * the image: its config file, its layer files (base first, aligned with the
 * config's rootfs.diff_ids) and its RepoTags.
 *
 * Files are named by digest under `blobs/sha256/`, as Docker 25+ names them.
 * Layers are the gzip blobs of the store, copied as they are (streamed, never
 * decompressed): every loader named above detects a compressed layer.tar and
 * checks its uncompressed digest against diff_ids, and the archive is then
 * about the size of the image instead of its unpacked size. The config is
 * byte-identical, so the loaded image ID is the config digest.
 */
import { OcistackError } from '../errors.js';
import { digestHex } from '../image/digest.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor, ImageManifest } from '../image/types.js';
import { stageFile } from './staging.js';
import { TarFileWriter } from './tar-file.js';

export interface WriteDockerArchiveOptions {
  file: string;
  store: BlobStore;
  /** An image manifest (not an index: a docker archive holds single-platform images). */
  manifest: Descriptor;
  /** RepoTags, already in docker's familiar form (see {@link repoTag}). */
  repoTags: string[];
  mtime?: number;
  signal?: AbortSignal;
}

/**
 * Docker's familiar name for a reference (`registry/repository:tag`): Docker
 * Hub's host and its `library/` are dropped (`busybox:latest`), as
 * `docker save` writes RepoTags; references by digest only have none.
 */
export function repoTag(ref: { registry: string; repository: string; tag?: string }): string | undefined {
  if (!ref.tag) return undefined;
  if (ref.registry !== 'docker.io') return `${ref.registry}/${ref.repository}:${ref.tag}`;
  const repo = ref.repository.startsWith('library/') && ref.repository.split('/').length === 2 ? ref.repository.slice('library/'.length) : ref.repository;
  return `${repo}:${ref.tag}`;
}

export async function writeDockerArchive(opts: WriteDockerArchiveOptions): Promise<void> {
  const m = await opts.store.readJson<Partial<ImageManifest>>(opts.manifest.digest);
  if (!m.config || !Array.isArray(m.layers)) {
    throw new OcistackError(`${opts.manifest.digest} is not an image manifest`, { code: 'USAGE', hint: 'a docker archive holds single-platform images; build with --platform', exitCode: 2 });
  }
  const blobs: Descriptor[] = [m.config, ...m.layers];
  for (const b of blobs) {
    if (!(await opts.store.has(b.digest))) {
      throw new OcistackError(`blob ${b.digest} is not in the blob store ${opts.store.root}`, { code: 'BLOB_MISSING', hint: 'build or pull the image again' });
    }
  }
  const name = (d: Descriptor) => `blobs/sha256/${digestHex(d.digest)}`;
  const manifestJson = [{ Config: name(m.config), RepoTags: opts.repoTags.length ? opts.repoTags : null, Layers: m.layers.map(name) }];
  await stageFile(opts.file, opts.signal, async (tmp) => {
    const tar = await TarFileWriter.create(tmp, { mtime: opts.mtime, signal: opts.signal });
    try {
      await tar.dir('blobs/');
      await tar.dir('blobs/sha256/');
      const seen = new Set<string>();
      for (const b of blobs) {
        if (seen.has(b.digest)) continue; // the same layer twice is one file
        seen.add(b.digest);
        await tar.file(name(b), opts.store.path(b.digest), b.size);
      }
      // Last, as docker save does: a reader streaming the tar has every file it names.
      await tar.bytes('manifest.json', JSON.stringify(manifestJson) + '\n');
      await tar.finish();
    } catch (e) {
      await tar.close();
      throw e;
    }
  });
}
