/**
 * WORKDIR creates its directory (and missing parents) like BuildKit's mkdir
 * file op: mode 0755, owned by the stage's USER when one is set. A directory
 * that already exists (through symlinks too) needs no layer.
 */
import type { SourceLocation } from '../errors.js';
import type { ImageFs } from '../layer/image-fs.js';
import type { LayerEntry } from '../layer/types.js';
import { resolveChown } from './copy-chown.js';

export async function workdirLayerEntries(
  fs: ImageFs,
  dir: string,
  user: string | undefined,
  mtime: number,
  location: SourceLocation,
): Promise<LayerEntry[]> {
  const existing = fs.stat(dir);
  if (existing?.type === 'dir') return [];
  const owner = user ? await resolveChown(user, fs, location) : { uid: 0, gid: 0 };
  // Create each missing component under its real (symlink-resolved) parent.
  const parts = fs.resolve(dir).split('/').filter(Boolean);
  const entries: LayerEntry[] = [];
  let cur = '';
  for (const part of parts) {
    cur += `/${part}`;
    if (fs.stat(cur)?.type === 'dir') continue;
    entries.push({ path: cur, type: 'dir', mode: 0o755, uid: owner.uid, gid: owner.gid, mtime });
  }
  return entries;
}
