import type { Digest } from '../image/types.js';

/**
 * The metadata every view of a file shares: a layer index entry, a node of
 * an image's merged tree, a COPY source. Each adds its own `type` and keys.
 */
export interface FileMeta {
  /** Permission bits plus setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since epoch. */
  mtime: number;
  /** symlink: target as stored. */
  linkTarget?: string;
  /** Extended attributes: name -> byte string (one char per byte, latin1), exactly the stored bytes. */
  xattrs?: Record<string, string>;
}

/**
 * One entry to write into a layer tar. Paths are absolute in the image
 * (`/usr/bin/x`), without trailing slash; the writer stores them as
 * `usr/bin/x` (and `usr/bin/` for directories) as Docker does. The writer
 * normalises paths and hard-link targets (`./a//b/` is `/a/b`, `a/../b` is
 * `/b`) and refuses, with an OcistackError `LAYER_ENTRY`, a path that is
 * empty (except the root directory), contains NUL or climbs above the root,
 * ids beyond 32 bits, and empty symlink targets.
 */
export interface LayerEntry {
  path: string;
  /** `char`, `block`, `fifo`: device nodes and named pipes (from ADD archives), written as tar types 3, 4, 6. */
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'whiteout' | 'opaque' | 'char' | 'block' | 'fifo';
  /** Permission bits plus setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  /** char/block: device numbers. */
  devmajor?: number;
  devminor?: number;
  /** Seconds since epoch; clamped to SOURCE_DATE_EPOCH by the writer when set. */
  mtime: number;
  /** file: size in bytes. */
  size?: number;
  /** symlink: target as stored. hardlink: absolute image path of the first entry. */
  linkTarget?: string;
  /** file: where the bytes come from. */
  content?: () => NodeJS.ReadableStream | AsyncIterable<Uint8Array>;
  /**
   * Extended attributes (e.g. security.capability), written as PAX
   * `SCHILY.xattr.<name>` records. Values are byte strings: one char per
   * byte (latin1, `buf.toString('latin1')`), never UTF-8 text, because
   * values are binary (security.capability is a struct with bytes >= 0x80).
   * Layer scans (ImageNode.xattrs) return them the same way.
   */
  xattrs?: Record<string, string>;
}

/** A finished layer in the blob store. */
export interface LayerResult {
  /** Digest of the compressed blob (what manifests reference). */
  digest: Digest;
  /** Digest of the uncompressed tar (config rootfs.diff_ids). */
  diffId: Digest;
  /** Compressed size in bytes. */
  size: number;
  mediaType: string;
}
