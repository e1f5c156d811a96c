/**
 * Mount targets the rootfs lacks, provided WITHOUT touching the layer.
 *
 * runc needs a directory for /proc, /dev, /sys and a file for each
 * bind-mounted /etc file. Buildah and BuildKit create missing targets in
 * the rootfs and filter them out of the diff afterwards. Here they live in
 * a separate, per-step directory stacked as the TOP overlay lower dir above
 * the snapshot (`lowerdir=STUBS:SNAPSHOT`): the step sees them, but the
 * upper dir (the change) only gets what the step itself writes. A parent
 * that exists in the snapshot (/etc) gets the snapshot's mode, owner and
 * times in the stub dir, since overlay shows the top lower's metadata for
 * a merged directory. A target that is a symlink in the image (Debian's
 * /etc/resolv.conf -> ../run/...) is shadowed by a plain stub, so runc
 * never follows an image symlink for our bind mounts.
 *
 * The rootfs is read through a view (lib/rootfs/layer-view.ts): the merged
 * layer snapshots the overlay will show, looked up without mounting
 * (cheaper than a read-only overlay mount just for these few lstats; and
 * a symlinked parent is never followed on the host).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RootfsView } from '../../rootfs/layer-view.js';
import { dirView } from './user.js';

export interface StubTargets {
  dirs: readonly string[];
  files: readonly string[];
}

function copyMeta(from: fs.Stats, to: string): void {
  fs.chmodSync(to, from.mode & 0o7777);
  if (process.getuid?.() === 0) fs.lchownSync(to, from.uid, from.gid);
  fs.utimesSync(to, from.atime, from.mtime);
}

/**
 * Fill `stubs` (an empty dir) with what `rootfs` lacks of `targets`.
 * Returns the image paths created (targets and parents), for the record.
 */
export function makeStubLayer(rootfs: string | RootfsView, stubs: string, targets: StubTargets): string[] {
  const view = typeof rootfs === 'string' ? dirView(rootfs) : rootfs;
  const lstat = (imagePath: string): fs.Stats | undefined => view.lookup(path.posix.normalize(imagePath).replace(/^\/+/, '').replace(/\/+$/, ''))?.st;
  const made: string[] = [];
  const parents = new Map<string, fs.Stats | undefined>();
  const ensureParent = (imageDir: string): void => {
    if (imageDir === '/' || parents.has(imageDir)) return;
    ensureParent(path.posix.dirname(imageDir));
    const st = lstat(imageDir);
    parents.set(imageDir, st?.isDirectory() ? st : undefined);
    fs.mkdirSync(path.join(stubs, imageDir), { mode: 0o755 });
    if (!st?.isDirectory()) made.push(imageDir);
  };
  const need = (p: string, isDir: boolean): boolean => {
    const st = lstat(p);
    return isDir ? !st?.isDirectory() : !st?.isFile();
  };
  for (const d of targets.dirs) {
    if (!need(d, true)) continue;
    ensureParent(path.posix.dirname(d));
    fs.mkdirSync(path.join(stubs, d), { mode: 0o755 });
    made.push(d);
  }
  for (const f of targets.files) {
    if (!need(f, false)) continue;
    ensureParent(path.posix.dirname(f));
    fs.writeFileSync(path.join(stubs, f), '', { mode: 0o644 });
    made.push(f);
  }
  // Parents last: creating their children changed their times.
  for (const [dir, st] of [...parents].reverse()) if (st) copyMeta(st, path.join(stubs, dir));
  return made;
}
