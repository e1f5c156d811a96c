/**
 * Binary-safe reading of PAX extended headers (`x`, `g`) from a tar stream.
 *
 * node-tar's Parser keeps only the PAX keys it knows (path, size, mtime, ...)
 * and decodes the header body as UTF-8, so `SCHILY.xattr.*` records (whose
 * values are raw bytes: `security.capability` is a binary struct) never reach
 * its entries. {@link PaxXattrTracker} watches the same bytes on their way
 * into the parser, follows the tar block structure itself, and remembers the
 * xattrs of each file header; {@link PaxXattrTracker.take} hands them to the
 * matching node-tar entry. It holds only the pending headers (the parser
 * lags the tracker by at most its buffered chunks), never a layer's content.
 *
 * Representation: xattr values are byte strings, one char per byte (latin1),
 * the same as `LayerEntry.xattrs` and the tar writer (tar-header.ts).
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { ReadEntry } from 'tar';

const BLOCK = 512;
/** node-tar ignores extended headers bigger than this (its maxMetaEntrySize default); so do we. */
const MAX_META = 1024 * 1024;
const XATTR_PREFIX = 'SCHILY.xattr.';

/** Typeflags node-tar applies PAX fields to (its `normalFsTypes`). */
const NORMAL_FS_TYPES = new Set(['0', '1', '2', '3', '4', '5', '6', '7', 'D']);

/** Typeflags whose body is metadata for the next entry (PAX, old Solaris `X`, GNU long name/link). */
const META_TYPES = new Set(['x', 'g', 'X', 'L', 'K']);

/** One parsed PAX record set: raw key (UTF-8) -> value bytes. */
export type PaxRecords = Map<string, Buffer>;

/**
 * Parse the body of a PAX extended header: records `"%d %s=%s\n"` where the
 * decimal length counts the whole record in bytes and the value is raw bytes
 * (it may contain `=`, newlines or any byte). Malformed records end parsing,
 * keeping what came before (as GNU tar and node-tar do).
 */
export function parsePaxRecords(body: Buffer): PaxRecords {
  const out: PaxRecords = new Map();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // NUL padding after the last record
    const space = body.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number(body.toString('latin1', pos, space));
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > body.length || body[pos + len - 1] !== 0x0a) break;
    const eq = body.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= pos + len - 1) break;
    const key = body.toString('utf8', space + 1, eq);
    out.set(key, body.subarray(eq + 1, pos + len - 1));
    pos += len;
  }
  return out;
}

/** `SCHILY.xattr.<name>` records as `name -> byte string` (latin1). */
export function xattrsOfRecords(records: PaxRecords): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const [k, v] of records) {
    if (!k.startsWith(XATTR_PREFIX) || k.length === XATTR_PREFIX.length) continue;
    (out ??= {})[k.slice(XATTR_PREFIX.length)] = v.toString('latin1');
  }
  return out;
}

/** Octal (or GNU base-256) number field, as node-tar reads it. */
function numberField(block: Buffer, off: number, len: number): number | undefined {
  if (block[off]! & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as a marker.
    let v = block[off]! & 0x7f;
    if (block[off]! & 0x40) return undefined; // negative: not a valid size
    for (let i = off + 1; i < off + len; i++) v = v * 256 + block[i]!;
    return v;
  }
  const s = block.toString('utf8', off, off + len).replace(/\0.*$/, '').trim();
  const n = parseInt(s, 8);
  return Number.isNaN(n) ? undefined : n;
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

interface Pending {
  /** Stored checksum of the file header: how a node-tar entry is matched to it. */
  cksum: number | undefined;
  xattrs: Record<string, string> | undefined;
}

/**
 * Follows a tar byte stream block by block and records, for every non-meta
 * header, the xattrs its PAX headers (and any global header) gave it.
 * Feed it every chunk before the parser sees that chunk.
 */
export class PaxXattrTracker {
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** Bytes of entry body (plus padding) still to pass before the next header. */
  private skip = 0;
  /** Body of a meta entry being collected, and how many bytes of it are still due. */
  private meta: { type: string; chunks: Buffer[]; due: number; keep: boolean } | undefined;
  private local: PaxRecords | undefined;
  private global: Record<string, string> | undefined;
  private globalSize: Buffer | undefined;
  private readonly queue: Pending[] = [];

  /** Observe the next chunk of the (uncompressed) tar stream. */
  feed(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.meta) {
        const n = Math.min(this.meta.due, chunk.length - pos);
        if (this.meta.keep) this.meta.chunks.push(chunk.subarray(pos, pos + n));
        this.meta.due -= n;
        pos += n;
        if (this.meta.due === 0) this.endMeta();
        continue;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      const n = Math.min(BLOCK - this.headerFill, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + n);
      this.headerFill += n;
      pos += n;
      if (this.headerFill === BLOCK) {
        this.headerFill = 0;
        this.onHeader(this.header);
      }
    }
  }

  /** A pass-through stream that feeds the tracker: put it just before the parser. */
  stream(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        this.feed(chunk);
        cb(null, chunk);
      },
    });
  }

  private onHeader(h: Buffer): void {
    if (isZeroBlock(h)) return;
    const typeflag = String.fromCharCode(h[156]!) === '\0' ? '0' : String.fromCharCode(h[156]!);
    const headerSize = numberField(h, 124, 12) ?? 0;
    if (META_TYPES.has(typeflag)) {
      // A PAX `size` never applies to the extension headers between it and its file.
      const padded = headerSize + ((BLOCK - (headerSize % BLOCK)) % BLOCK);
      const keep = (typeflag === 'x' || typeflag === 'g' || typeflag === 'X') && headerSize <= MAX_META;
      if (headerSize === 0) return;
      this.meta = { type: typeflag, chunks: [], due: headerSize, keep };
      this.skip = padded - headerSize;
      return;
    }
    const local = this.local;
    this.local = undefined;
    const ownXattrs = local ? xattrsOfRecords(local) : undefined;
    const xattrs = this.global || ownXattrs ? { ...this.global, ...ownXattrs } : undefined;
    this.queue.push({ cksum: numberField(h, 148, 12), xattrs });
    // Find the body size as node-tar does, or the two would lose step: PAX
    // (then global) `size` for ordinary file-system types; no body for a
    // directory, nor for a file whose name ends in '/' (an old-style dir).
    let size = headerSize;
    if (NORMAL_FS_TYPES.has(typeflag)) {
      const pax = local?.get('size') ?? this.globalSize;
      const n = pax === undefined ? NaN : Number(pax.toString('latin1'));
      if (Number.isSafeInteger(n) && n >= 0) size = n;
    }
    const name = local?.get('path')?.toString('utf8') ?? h.toString('utf8', 0, 100).replace(/\0.*$/, '');
    if (typeflag === '5' || (typeflag === '0' && name.endsWith('/'))) size = 0;
    this.skip = size + ((BLOCK - (size % BLOCK)) % BLOCK);
  }

  private endMeta(): void {
    const m = this.meta!;
    this.meta = undefined;
    if (!m.keep) return;
    const records = parsePaxRecords(Buffer.concat(m.chunks));
    if (m.type === 'g') {
      if (records.has('size')) this.globalSize = records.get('size');
      const x = xattrsOfRecords(records);
      if (x) this.global = { ...this.global, ...x };
      return;
    }
    // Several `x` headers before one file merge, later keys winning.
    if (this.local) for (const [k, v] of records) this.local.set(k, v);
    else this.local = records;
  }

  /**
   * The xattrs of the file header node-tar turned into `entry`. Headers
   * node-tar skipped (invalid ones it only warns about) are dropped on the
   * way: entries arrive in stream order, so the first pending header with
   * the same stored checksum is this entry's.
   */
  take(entry: ReadEntry): Record<string, string> | undefined {
    const cksum = (entry.header as unknown as { cksum?: number }).cksum;
    const i = this.queue.findIndex((p) => p.cksum === cksum);
    if (i < 0) return undefined;
    return this.queue.splice(0, i + 1)[i]!.xattrs;
  }
}
