/** Shared by the rootfs tests: layers from raw tar bytes in a fresh blob store. */
import { BlobStore } from '../lib/image/store.js';
import { excludeFromLayerAudit } from './layer-audit-keep.js';
import { MediaType, type Descriptor, type Digest } from '../lib/image/types.js';
import { sha256 } from '../lib/image/digest.js';
import { rawTar, rawTarGz, type RawEntry } from './helpers/raw-tar.js';
import { makeTempDir } from './helpers/tools.js';

export function newStore(): BlobStore {
  const store = new BlobStore(makeTempDir('rootfs-store'));
  // Hand-made (often hostile, or only valid on top of a lower layer) tars, not
  // ocistack's writer: the GNU tar audit of written layers is not for them.
  excludeFromLayerAudit(store.root);
  return store;
}

/** Put a layer made of `entries` into `store`: its descriptor and diff_id. */
export async function putLayer(store: BlobStore, entries: RawEntry[], gzip = true): Promise<{ desc: Descriptor; diffId: Digest }> {
  const tar = rawTar(entries);
  const blob = gzip ? rawTarGz(entries) : tar;
  const { digest, size } = await store.putBytes(blob);
  return { desc: { mediaType: gzip ? MediaType.OciLayerGzip : MediaType.OciLayer, digest, size }, diffId: sha256(tar) };
}

export async function putLayers(store: BlobStore, layers: RawEntry[][]): Promise<{ layers: Descriptor[]; diffIds: Digest[] }> {
  const out = { layers: [] as Descriptor[], diffIds: [] as Digest[] };
  for (const l of layers) {
    const { desc, diffId } = await putLayer(store, l);
    out.layers.push(desc);
    out.diffIds.push(diffId);
  }
  return out;
}
