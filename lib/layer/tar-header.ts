/**
 * Tar headers written byte by byte, so every field is under our control:
 * USTAR when a header fits, with a PAX extended header in front for what
 * does not (long or non-ASCII names and link targets, big sizes or ids,
 * timestamps out of range, xattrs). uname/gname stay empty and device
 * numbers are zero except on device entries, so output depends only on the
 * entry. What no reader could take back unchanged is refused with a typed
 * error instead: an empty name, a NUL in a name or link target, ids beyond
 * 32 bits, device numbers beyond the 7 octal digits of their field.
 */
import { layerEntryError, showPath } from './entry-path.js';

export const BLOCK = 512;

/** Regular file, hard link, symlink, character device, block device, directory, FIFO, PAX header. */
export type TarType = '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x';

export interface TarHeader {
  /** Name as stored (`usr/bin/x`, `usr/bin/` for directories). */
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  /** Character and block devices ('3', '4'). */
  devmajor?: number;
  devminor?: number;
  /** name -> value as a byte string: one char per byte (latin1), see LayerEntry.xattrs. */
  xattrs?: Record<string, string>;
}

/** A char above 0xff cannot be one byte: a caller passed text, not a byte string. */
function byteString(value: string, key: string): string {
  if (/[^\x00-\xff]/.test(value)) throw new Error(`xattr ${key}: value must be a byte string (one char per byte, latin1)`);
  return value;
}

const MAX_OCTAL_8 = 0o7777777; // 7 digits in an 8-byte field
const MAX_OCTAL_12 = 0o77777777777; // 11 digits in a 12-byte field
/** uid/gid above this are refused: Linux ids are 32 bits, and (uid_t)-1 = 2^32-1 means "no id" (chown leaves the owner unchanged). */
const MAX_ID = 0xfffffffe;

function isAscii(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

function writeString(buf: Buffer, offset: number, length: number, value: string): void {
  buf.write(value, offset, length, 'utf8');
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, '0');
  buf.write(digits + '\0', offset, length, 'ascii');
}

/** Split a long name into USTAR prefix + name at a slash, if possible. */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  // Non-ASCII names always go through PAX `path` (UTF-8 by definition), as Go's
  // archive/tar writes them: USTAR fields have no encoding.
  if (!isAscii(name)) return undefined;
  if (name.length <= 100) return { prefix: '', name };
  // Directory names end with '/', which must stay in the name part.
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return { prefix, name: rest };
    if (prefix.length <= 155) break;
  }
  return undefined;
}

/**
 * One PAX record: `<len> <key>=<value>\n` where len counts the whole record
 * in bytes, itself included. Keys and names/paths are UTF-8; a `binary`
 * value is a byte string (one char per byte, latin1) written as those bytes.
 */
function paxRecord(key: string, value: string, binary: boolean): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.from(value, binary ? 'latin1' : 'utf8'), Buffer.from('\n')]);
  let len = body.length + String(body.length).length;
  if (String(len).length + body.length !== len) len = body.length + String(len).length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function ustarBlock(h: TarHeader, name: { prefix: string; name: string }, linkname: string): Buffer {
  const buf = Buffer.alloc(BLOCK);
  writeString(buf, 0, 100, name.name);
  writeOctal(buf, 100, 8, h.mode);
  writeOctal(buf, 108, 8, h.uid);
  writeOctal(buf, 116, 8, h.gid);
  writeOctal(buf, 124, 12, h.size);
  writeOctal(buf, 136, 12, h.mtime);
  buf.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  buf.write(h.type, 156, 1, 'ascii');
  writeString(buf, 157, 100, linkname);
  buf.write('ustar\0', 257, 6, 'ascii');
  buf.write('00', 263, 2, 'ascii');
  // uname (265, 32) and gname (297, 32) stay empty on purpose.
  writeOctal(buf, 329, 8, h.devmajor ?? 0);
  writeOctal(buf, 337, 8, h.devminor ?? 0);
  writeString(buf, 345, 155, name.prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[i]!;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return buf;
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/**
 * Encode one header (and a PAX header before it when needed).
 * Returns the bytes to write before the entry's content.
 */
export function encodeHeader(h: TarHeader): Buffer {
  checkHeader(h);
  // [key, value, value is a byte string]
  const records: [string, string, boolean][] = [];
  let name = splitUstarName(h.name);
  if (!name) {
    records.push(['path', h.name, false]);
    name = { prefix: '', name: asciiPrefix(h.name, 100) };
  }
  let linkname = h.linkname ?? '';
  if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) {
    records.push(['linkpath', linkname, false]);
    linkname = asciiPrefix(linkname, 100);
  }
  const fields: { key: string; value: number; max: number }[] = [
    { key: 'uid', value: h.uid, max: MAX_OCTAL_8 },
    { key: 'gid', value: h.gid, max: MAX_OCTAL_8 },
    { key: 'size', value: h.size, max: MAX_OCTAL_12 },
    { key: 'mtime', value: h.mtime, max: MAX_OCTAL_12 },
  ];
  const fixed = { ...h };
  for (const f of fields) {
    if (f.value < 0 || f.value > f.max || !Number.isInteger(f.value)) {
      records.push([f.key, String(f.value), false]);
      (fixed as unknown as Record<string, number>)[f.key] = 0;
    }
  }
  for (const key of Object.keys(h.xattrs ?? {}).sort()) records.push([`SCHILY.xattr.${key}`, byteString(h.xattrs![key]!, key), true]);
  const main = ustarBlock(fixed, name, linkname);
  if (records.length === 0) return main;
  records.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const paxBody = Buffer.concat(records.map(([k, v, binary]) => paxRecord(k, v, binary)));
  const paxHeader = ustarBlock(
    { name: '', type: 'x', mode: 0o644, uid: 0, gid: 0, size: paxBody.length, mtime: 0 },
    { prefix: '', name: asciiPrefix('PaxHeaders.0/' + baseName(h.name), 100) },
    '',
  );
  return Buffer.concat([paxHeader, paxBody, Buffer.alloc(pad(paxBody.length)), main]);
}

/** Refuse what tar cannot carry faithfully (see the file header). */
export function checkHeader(h: TarHeader): void {
  if (h.name === '' || h.name === '/') throw layerEntryError('layer entry has an empty name', 'only the root directory has no name, and it is never written as an entry');
  if (h.name.includes('\0')) throw layerEntryError(`layer entry ${showPath(h.name)} contains a NUL byte`, 'file names cannot contain NUL; rename the file');
  if (h.linkname?.includes('\0')) throw layerEntryError(`link target of ${showPath(h.name)} contains a NUL byte`, 'link targets cannot contain NUL; fix the link');
  for (const [key, value] of [['uid', h.uid], ['gid', h.gid]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > MAX_ID) {
      throw layerEntryError(`${key} ${value} of ${showPath(h.name)} is not a 32-bit id`, `use a ${key} from 0 to ${MAX_ID}`);
    }
  }
  if (!Number.isInteger(h.size) || h.size < 0) throw layerEntryError(`size ${h.size} of ${showPath(h.name)} is not a byte count`, 'this is a bug in the caller of writeLayer: give files their size in bytes');
  for (const [key, value] of [['major', h.devmajor], ['minor', h.devminor]] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > MAX_OCTAL_8)) {
      throw layerEntryError(`device ${key} ${value} of ${showPath(h.name)} does not fit a tar header`, `device numbers go from 0 to ${MAX_OCTAL_8}`);
    }
  }
  for (const key of Object.keys(h.xattrs ?? {})) {
    if (key === '' || key.includes('\0') || key.includes('=')) throw layerEntryError(`xattr name ${showPath(key)} of ${showPath(h.name)} cannot be stored`, 'xattr names are non-empty and contain neither NUL nor =');
  }
}

function baseName(n: string): string {
  const trimmed = n.endsWith('/') ? n.slice(0, -1) : n;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** First bytes of s that are ASCII and fit `max` bytes (the USTAR field when PAX carries the full value). */
function asciiPrefix(s: string, max: number): string {
  return s.replace(/[^\x00-\x7f]/g, '_').slice(0, max);
}

/** Zero bytes that pad content of `size` to a whole block. */
export function paddingFor(size: number): Buffer {
  return Buffer.alloc(pad(size));
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
