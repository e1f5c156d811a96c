/**
 * `--output type=oci,dest=FILE.tar`: an OCI image layout as one tar file
 * (what `skopeo copy ... oci-archive:FILE` reads and BuildKit's oci exporter
 * writes): `oci-layout`, `index.json` naming the image (ref.name = the tag of
 * the first -t, as the layout directory output does), and every blob under
 * `blobs/sha256/`, streamed from the blob store.
 */
import { digestHex } from '../image/digest.js';
import { reachableBlobs, REF_NAME } from '../image/layout.js';
import type { BlobStore } from '../image/store.js';
import { MediaType, type Descriptor, type ImageIndex } from '../image/types.js';
import { stageFile } from './staging.js';
import { TarFileWriter } from './tar-file.js';

export interface WriteOciArchiveOptions {
  file: string;
  store: BlobStore;
  manifest: Descriptor;
  /** The ref.name annotation of the image in index.json. */
  tag?: string;
  /** Every entry's mtime, seconds (default 0: the same image gives the same bytes). */
  mtime?: number;
  signal?: AbortSignal;
}

/** The index.json of a layout holding one image. */
export function singleImageIndex(manifest: Descriptor, tag?: string): ImageIndex {
  const entry: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
  if (manifest.platform) entry.platform = manifest.platform;
  if (tag) entry.annotations = { [REF_NAME]: tag };
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [entry] };
}

export async function writeOciArchive(opts: WriteOciArchiveOptions): Promise<void> {
  const blobs = await reachableBlobs(opts.store, opts.manifest);
  await stageFile(opts.file, opts.signal, async (tmp) => {
    const tar = await TarFileWriter.create(tmp, { mtime: opts.mtime, signal: opts.signal });
    try {
      await tar.bytes('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      await tar.bytes('index.json', JSON.stringify(singleImageIndex(opts.manifest, opts.tag), null, 2) + '\n');
      await tar.dir('blobs/');
      await tar.dir('blobs/sha256/');
      for (const d of blobs.values()) await tar.file(`blobs/sha256/${digestHex(d.digest)}`, opts.store.path(d.digest), d.size);
      await tar.finish();
    } catch (e) {
      await tar.close();
      throw e;
    }
  });
}
