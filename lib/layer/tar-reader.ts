/**
 * A tar reader that keeps every member, for ADD of local archives. node-tar
 * (used for layer scans) drops what ADD must keep: GNU and PAX sparse files
 * come out as their stored form, device nodes and FIFOs have no numbers, and
 * xattr records are lost. This reader follows the rules of Go's archive/tar
 * reader (the one Docker and BuildKit unpack with), written from the format
 * descriptions, not from its code:
 *
 * - headers: V7, USTAR (prefix + name), GNU (`ustar  `), octal or base-256
 *   numbers, checksum signed or unsigned; a V7/USTAR regular file whose name
 *   ends in `/` is a directory;
 * - PAX extended headers (`x`): path, linkpath, size, uid, gid, mtime,
 *   SCHILY.xattr.*, GNU.sparse.*; global headers (`g`) are ignored, as Docker
 *   does; GNU long names and link names (`L`, `K`);
 * - sparse files: GNU old format (`S`, map in the header and its extension
 *   blocks), PAX 0.0 (repeated GNU.sparse.offset/numbytes), 0.1
 *   (GNU.sparse.map) and 1.0 (map at the start of the data), with
 *   GNU.sparse.name and GNU.sparse.size/realsize giving the real name and size.
 *
 * Malformed input (bad checksum, truncated data, a sparse map that overlaps
 * or runs past the real size, huge special headers) is a TarFormatError.
 */
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';

const BLOCK = 512;
/** Longest PAX header or GNU long name accepted (Go's limit for these special members). */
const MAX_SPECIAL = 1 << 20;
/** Most sparse map entries accepted (a real map never comes close). */
const MAX_SPARSE_ENTRIES = 1 << 20;

export class TarFormatError extends Error {}

export type TarMemberType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface SparseSegment {
  offset: number;
  length: number;
}

export interface TarMember {
  /** Name as stored (after PAX/GNU long names), e.g. `./a/b` or `dir/`. */
  name: string;
  type: TarMemberType;
  /** The raw type flag (for messages about `other`). */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  /** Real size in bytes (a sparse file's expanded size). */
  size: number;
  /** Seconds since epoch. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.* records: name -> value as a byte string (latin1). */
  xattrs?: Record<string, string>;
  /** Data segments of a sparse file, in order; holes read as zeros. */
  sparse?: SparseSegment[];
}

/** Reads exact byte counts from an async stream of chunks. */
class ByteSource {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  private readonly it: AsyncIterator<Buffer | string>;

  constructor(stream: AsyncIterable<Buffer | string>) {
    this.it = stream[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  /** Exactly n bytes, or undefined at a clean end of input (no byte left). */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) {
      if (!(await this.more())) {
        if (this.buf.length === 0) return undefined;
        throw new TarFormatError('unexpected end of archive');
      }
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** n bytes as they come, in pieces. */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw new TarFormatError('unexpected end of archive');
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      left -= take;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.pieces(n)) {
      // discard
    }
  }
}

function cstring(b: Buffer): string {
  const i = b.indexOf(0);
  return (i < 0 ? b : b.subarray(0, i)).toString('utf8');
}

/** Octal (space/NUL padded) or base-256 (high bit set) number. */
function parseNumber(b: Buffer, field: string): number {
  if (b.length && b[0]! & 0x80) {
    // base-256: two's complement big-endian, first byte 0x80 (positive) or 0xff (negative)
    const negative = b[0] === 0xff;
    let v = 0n;
    for (let i = 0; i < b.length; i++) {
      let byte = i === 0 ? b[i]! & 0x7f : b[i]!;
      if (negative) byte ^= i === 0 ? 0x7f : 0xff;
      v = (v << 8n) | BigInt(byte);
    }
    if (negative) v = -(v + 1n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError(`${field} out of range`);
    return Number(v);
  }
  const s = b.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ ]+/, '').replace(/\0.*$/s, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`invalid ${field} field "${s}"`);
  return parseInt(s, 8);
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function checksumOk(h: Buffer): boolean {
  const stored = parseNumber(h.subarray(148, 156), 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

/** PAX records in order (keys may repeat: sparse 0.0 lists offset/numbytes pairs). */
export function parsePax(body: Buffer): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // padding
    const sp = body.indexOf(0x20, pos);
    if (sp < 0) throw new TarFormatError('invalid PAX record');
    const len = Number(body.subarray(pos, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= sp - pos + 1 || pos + len > body.length || body[pos + len - 1] !== 0x0a) throw new TarFormatError('invalid PAX record');
    const rec = body.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('invalid PAX record');
    out.push([rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1)]);
    pos += len;
  }
  return out;
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

function paxInt(v: Buffer, key: string): number {
  const s = v.toString('latin1');
  if (!/^-?\d+$/.test(s)) throw new TarFormatError(`invalid PAX ${key} "${s}"`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new TarFormatError(`PAX ${key} out of range`);
  return n;
}

function parseSparseOld(b: Buffer, count: number, into: SparseSegment[]): void {
  for (let i = 0; i < count; i++) {
    const e = b.subarray(i * 24, i * 24 + 24);
    if (isZero(e)) continue;
    into.push({ offset: parseNumber(e.subarray(0, 12), 'sparse offset'), length: parseNumber(e.subarray(12, 24), 'sparse length') });
  }
}

/** Sparse maps must be in order, not overlap, and stay within the real size (as Go's validateSparseEntries). */
function validateSparse(map: SparseSegment[], size: number, name: string): void {
  let end = 0;
  for (const s of map) {
    if (s.offset < 0 || s.length < 0 || s.offset < end || s.offset + s.length > size) throw new TarFormatError(`invalid sparse map for ${name}`);
    end = s.offset + s.length;
  }
}

/** GNU sparse 1.0: the map is decimal lines at the start of the data, padded to a block. Returns it and the bytes it took. */
async function readSparseMap10(src: ByteSource, dataSize: number): Promise<{ map: SparseSegment[]; used: number }> {
  let text = '';
  let used = 0;
  const lines: string[] = [];
  const need = async (): Promise<void> => {
    if (used + BLOCK > dataSize) throw new TarFormatError('truncated GNU sparse 1.0 map');
    const b = (await src.read(BLOCK)) ?? Buffer.alloc(0);
    if (b.length < BLOCK) throw new TarFormatError('unexpected end of archive');
    used += BLOCK;
    text += b.toString('latin1');
  };
  const nextNumber = async (): Promise<number> => {
    while (lines.length === 0) {
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        lines.push(text.slice(0, nl));
        text = text.slice(nl + 1);
      } else await need();
    }
    const s = lines.shift()!;
    if (!/^\d+$/.test(s)) throw new TarFormatError('invalid GNU sparse 1.0 map');
    return Number(s);
  };
  const n = await nextNumber();
  if (n > MAX_SPARSE_ENTRIES) throw new TarFormatError('GNU sparse map too large');
  const map: SparseSegment[] = [];
  for (let i = 0; i < n; i++) map.push({ offset: await nextNumber(), length: await nextNumber() });
  return { map, used };
}

/**
 * Read an archive member by member. The consumer calls `extract(file)` to
 * write a regular file's bytes (holes of sparse files stay holes); data it
 * does not extract is skipped.
 */
export async function* readTar(stream: Readable | AsyncIterable<Buffer>): AsyncGenerator<TarMember & { extract(file: string): Promise<void> }> {
  const src = new ByteSource(stream as AsyncIterable<Buffer>);
  let pax: [string, Buffer][] = [];
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const h = await src.read(BLOCK);
    if (!h) return; // no end-of-archive blocks: accepted, as GNU tar and Go do
    if (isZero(h)) return;
    if (!checksumOk(h)) throw new TarFormatError('tar header checksum mismatch (corrupt archive, or not a tar file)');
    const typeflag = h.toString('latin1', 156, 157);
    const magic = h.toString('latin1', 257, 265);
    const gnu = magic === 'ustar  \0';
    const ustar = magic.startsWith('ustar\0');
    let size = parseNumber(h.subarray(124, 136), 'size');
    if (size < 0) throw new TarFormatError('negative size');

    // Special members that describe the next one.
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_SPECIAL) throw new TarFormatError(`extended header of ${size} bytes is too large`);
      const body = (await src.read(size + pad(size))) ?? Buffer.alloc(0);
      if (body.length < size) throw new TarFormatError('unexpected end of archive');
      const data = body.subarray(0, size);
      if (typeflag === 'x') pax = pax.concat(parsePax(data));
      else if (typeflag === 'L') longName = cstring(data);
      else if (typeflag === 'K') longLink = cstring(data);
      // 'g': global PAX headers are ignored, as Docker's unpacker does.
      continue;
    }

    let name = cstring(h.subarray(0, 100));
    if (ustar) {
      const prefix = cstring(h.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    let linkname = cstring(h.subarray(157, 257));
    const mode = parseNumber(h.subarray(100, 108), 'mode');
    let uid = parseNumber(h.subarray(108, 116), 'uid');
    let gid = parseNumber(h.subarray(116, 124), 'gid');
    let mtime = parseNumber(h.subarray(136, 148), 'mtime');
    const devmajor = ustar || gnu ? parseNumber(h.subarray(329, 337), 'devmajor') : 0;
    const devminor = ustar || gnu ? parseNumber(h.subarray(337, 345), 'devminor') : 0;
    if (longName !== undefined) name = longName;
    if (longLink !== undefined) linkname = longLink;
    longName = longLink = undefined;

    // PAX overrides.
    let xattrs: Record<string, string> | undefined;
    let sparse: SparseSegment[] | undefined;
    let realSize: number | undefined;
    let sparseMajor: number | undefined;
    let sparseMinor: number | undefined;
    let sparseName: string | undefined;
    let pendingOffset: number | undefined;
    const paxSparse: SparseSegment[] = [];
    for (const [key, value] of pax) {
      const text = (): string => value.toString('utf8');
      switch (key) {
        case 'path':
          name = text();
          break;
        case 'linkpath':
          linkname = text();
          break;
        case 'size':
          size = paxInt(value, key);
          break;
        case 'uid':
          uid = paxInt(value, key);
          break;
        case 'gid':
          gid = paxInt(value, key);
          break;
        case 'mtime': {
          const t = Number(value.toString('latin1'));
          if (!Number.isFinite(t)) throw new TarFormatError('invalid PAX mtime');
          mtime = Math.floor(t);
          break;
        }
        case 'GNU.sparse.major':
          sparseMajor = paxInt(value, key);
          break;
        case 'GNU.sparse.minor':
          sparseMinor = paxInt(value, key);
          break;
        case 'GNU.sparse.name':
          sparseName = text();
          break;
        case 'GNU.sparse.size':
        case 'GNU.sparse.realsize':
          realSize = paxInt(value, key);
          break;
        case 'GNU.sparse.offset':
          pendingOffset = paxInt(value, key);
          break;
        case 'GNU.sparse.numbytes':
          if (pendingOffset === undefined) throw new TarFormatError('GNU.sparse.numbytes without an offset');
          paxSparse.push({ offset: pendingOffset, length: paxInt(value, key) });
          pendingOffset = undefined;
          break;
        case 'GNU.sparse.map': {
          const nums = value.toString('latin1').split(',').filter((s) => s !== '');
          if (nums.length % 2 !== 0 || nums.some((s) => !/^\d+$/.test(s))) throw new TarFormatError('invalid GNU.sparse.map');
          for (let i = 0; i < nums.length; i += 2) paxSparse.push({ offset: Number(nums[i]), length: Number(nums[i + 1]) });
          break;
        }
        default:
          if (key.startsWith('SCHILY.xattr.')) (xattrs ??= {})[key.slice('SCHILY.xattr.'.length)] = value.toString('latin1');
      }
    }
    pax = [];
    if (sparseName !== undefined) name = sparseName;
    if (name.includes('\0') || linkname.includes('\0')) throw new TarFormatError(`member name contains a NUL byte`);

    let type: TarMemberType;
    switch (typeflag) {
      case '0':
      case '\0':
      case '7':
        type = name.endsWith('/') && !gnu && typeflag !== '7' ? 'dir' : 'file';
        break;
      case 'S':
        type = 'file';
        break;
      case '1':
        type = 'hardlink';
        break;
      case '2':
        type = 'symlink';
        break;
      case '3':
        type = 'char';
        break;
      case '4':
        type = 'block';
        break;
      case '5':
      case 'D': // GNU dump directory: a directory followed by a listing we do not need
        type = 'dir';
        break;
      case '6':
        type = 'fifo';
        break;
      default:
        type = 'other';
    }

    // Sparse maps.
    let dataSize = type === 'file' || typeflag === 'D' || type === 'other' ? size : 0;
    if (typeflag === '1' || typeflag === '2' || typeflag === '3' || typeflag === '4' || typeflag === '5' || typeflag === '6') dataSize = 0;
    let mapBytes = 0;
    let realFileSize = size;
    if (typeflag === 'S' && gnu) {
      sparse = [];
      parseSparseOld(h.subarray(386, 482), 4, sparse);
      let extended = h[482] !== 0;
      realFileSize = parseNumber(h.subarray(483, 495), 'realsize');
      while (extended) {
        const ext = await src.read(BLOCK);
        if (!ext) throw new TarFormatError('unexpected end of archive');
        parseSparseOld(ext.subarray(0, 504), 21, sparse);
        if (sparse.length > MAX_SPARSE_ENTRIES) throw new TarFormatError('GNU sparse map too large');
        extended = ext[504] !== 0;
      }
    } else if (sparseMajor === 1 && sparseMinor === 0 && type === 'file') {
      const m = await readSparseMap10(src, size);
      sparse = m.map;
      mapBytes = m.used;
      realFileSize = realSize ?? size;
    } else if (paxSparse.length > 0 || (realSize !== undefined && type === 'file')) {
      sparse = paxSparse;
      realFileSize = realSize ?? size;
    } else if (sparseMajor !== undefined) {
      throw new TarFormatError(`GNU sparse format ${sparseMajor}.${sparseMinor ?? 0} of ${name} is not supported`);
    }
    if (sparse) {
      validateSparse(sparse, realFileSize, name);
      const stored = sparse.reduce((a, s) => a + s.length, 0);
      if (stored !== dataSize - mapBytes) throw new TarFormatError(`sparse map of ${name} does not match its data size`);
    }

    const member: TarMember = {
      name,
      type,
      typeflag,
      mode: mode & 0o7777,
      uid,
      gid,
      size: type === 'file' ? realFileSize : 0,
      mtime,
      linkname,
      devmajor,
      devminor,
    };
    if (xattrs) member.xattrs = xattrs;
    if (sparse) member.sparse = sparse;

    const contentSize = dataSize - mapBytes;
    let consumed = false;
    const extract = async (file: string): Promise<void> => {
      if (consumed) throw new Error('member data already read');
      consumed = true;
      const fh = await open(file, 'w', 0o600);
      try {
        const segments = sparse ?? [{ offset: 0, length: contentSize }];
        for (const seg of segments) {
          let pos = seg.offset;
          for await (const piece of src.pieces(seg.length)) {
            await fh.write(piece, 0, piece.length, pos);
            pos += piece.length;
          }
        }
        await fh.truncate(member.size);
      } finally {
        await fh.close();
      }
    };
    yield Object.assign(member, { extract });
    if (!consumed) await src.skip(contentSize);
    await src.skip(pad(dataSize));
  }
}
