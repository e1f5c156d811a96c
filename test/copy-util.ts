/**
 * Test helpers for COPY/ADD: a base image made of real layers in a temp
 * store, and a listing of a layer blob (read with GNU tar, independent of
 * our own tar reader).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import type { Digest } from '../lib/image/types.js';
import type { CopyFields } from '../lib/dockerfile/types.js';
import type { CopyInstruction } from '../lib/engine/copy.js';
import { openImageFs, writeLayer, type ImageFs } from '../lib/layer/index.js';
import type { LayerEntry } from '../lib/layer/types.js';

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ocistack-${prefix}-`));
}

export function bytes(s: string): () => AsyncIterable<Uint8Array> {
  return () => (async function* () { yield Buffer.from(s); })();
}

export function file(p: string, content: string, extra: Partial<LayerEntry> = {}): LayerEntry {
  return { path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1600000000, size: Buffer.byteLength(content), content: bytes(content), ...extra };
}

export function dir(p: string, extra: Partial<LayerEntry> = {}): LayerEntry {
  return { path: p, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 1600000000, ...extra };
}

export function symlink(p: string, target: string): LayerEntry {
  return { path: p, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1600000000, linkTarget: target };
}

/** A small busybox-like base: users, a symlinked /usr/local/bin, a file where a dir might be expected. */
export async function baseImage(store: BlobStore): Promise<{ fs: ImageFs; layers: Digest[] }> {
  const l = await writeLayer(
    [
      dir('/etc'),
      file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nweb:x:33:44::/var/www:/bin/false\n'),
      file('/etc/group', 'root:x:0:\napp:x:1000:\nstaff:x:50:\n'),
      dir('/bin'),
      dir('/usr'),
      dir('/usr/local'),
      symlink('/usr/local/bin', '/bin'),
      dir('/opt', { mode: 0o700, uid: 7, gid: 7 }),
      file('/opt/afile', 'x'),
      dir('/home'),
      dir('/home/app', { uid: 1000, gid: 1000 }),
    ],
    { store },
  );
  return { fs: await openImageFs(store, [l.digest]), layers: [l.digest] };
}

export function copyIns(sources: string[], dest: string, extra: Partial<CopyFields> & { kind?: 'copy' | 'add' } = {}): CopyInstruction {
  const { kind = 'copy', ...rest } = extra;
  return { kind, sources, dest, heredocs: [], link: false, parents: false, exclude: [], keepGitDir: false, ...rest };
}

/**
 * `type path mode uid:gid size|->target|=>hardlink` per entry, tar order,
 * read with GNU tar's verbose listing.
 */
export function listLayer(store: BlobStore, digest: Digest): string[] {
  const out = execFileSync('tar', ['--numeric-owner', '-tvzf', store.path(digest)], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(\S)(\S{9}) (\d+)\/(\d+)\s+(\d+) \S+ \S+ (.*)$/.exec(line);
      if (!m) throw new Error(`unparsed tar line: ${line}`);
      const [, t, perms, uid, gid, size, rest] = m;
      let name = rest!;
      let extraText = '';
      const sl = name.indexOf(' -> ');
      const hl = name.indexOf(' link to ');
      if (t === 'l' && sl >= 0) {
        extraText = ' -> ' + name.slice(sl + 4);
        name = name.slice(0, sl);
      } else if (t === 'h' && hl >= 0) {
        extraText = ' => ' + name.slice(hl + 9);
        name = name.slice(0, hl);
      } else if (t === '-') extraText = ' ' + size;
      return `${t} ${name} ${perms} ${uid}:${gid}${extraText}`;
    });
}

/** Contents of one file inside a layer blob. */
export function layerFile(store: BlobStore, digest: Digest, p: string): string {
  return execFileSync('tar', ['-xzOf', store.path(digest), p.replace(/^\//, '')], { encoding: 'utf8' });
}
