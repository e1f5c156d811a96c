/**
 * `--output type=local,dest=DIR`: the image's final file system, unpacked.
 * The layers are applied by lib/rootfs (whiteouts, opaque directories, links,
 * modes, times, xattrs; owners and device nodes only when running as root,
 * else a warning) into a temp directory beside DIR, renamed into place when
 * complete.
 */
import type { BlobStore } from '../image/store.js';
import type { Descriptor, Digest } from '../image/types.js';
import type { ProgressListener } from '../progress/events.js';
import { materializeChain } from '../rootfs/index.js';
import { stageDir } from './staging.js';

export interface WriteLocalOptions {
  dir: string;
  store: BlobStore;
  /** Base first, as in the manifest. */
  layers: readonly Descriptor[];
  diffIds: readonly Digest[];
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export async function writeLocalRootfs(opts: WriteLocalOptions): Promise<void> {
  await stageDir(opts.dir, opts.signal, async (tmp) => {
    await materializeChain({ store: opts.store, layers: opts.layers, diffIds: opts.diffIds, dest: tmp, signal: opts.signal, onProgress: opts.onProgress });
  });
}
