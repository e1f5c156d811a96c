/**
 * Tar archives written byte by byte for tests, so a test can make entries no
 * honest writer would: names with `..` or a leading `/`, hard links out of
 * the archive, device nodes, whiteouts, xattrs as PAX SCHILY records. USTAR
 * headers; a PAX header in front when a name or link is longer than 100
 * bytes or the entry has xattrs.
 */
import { gzipSync } from 'node:zlib';

export interface RawEntry {
  name: string;
  /** Typeflag: '0' file, '1' hard link, '2' symlink, '3' char dev, '4' block dev, '5' dir, '6' FIFO. Default '0'. */
  type?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since epoch (default 1_600_000_000). */
  mtime?: number;
  linkname?: string;
  content?: string | Buffer;
  devmajor?: number;
  devminor?: number;
  /** name -> value (Buffer for binary values). */
  xattrs?: Record<string, string | Buffer>;
}

const BLOCK = 512;

function octal(buf: Buffer, off: number, len: number, v: number): void {
  buf.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'ascii');
}

function header(name: string, type: string, e: RawEntry, size: number, linkname: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'utf8');
  octal(b, 100, 8, e.mode ?? (type === '5' ? 0o755 : 0o644));
  octal(b, 108, 8, e.uid ?? 0);
  octal(b, 116, 8, e.gid ?? 0);
  octal(b, 124, 12, size);
  octal(b, 136, 12, e.mtime ?? 1_600_000_000);
  b.fill(0x20, 148, 156);
  b.write(type, 156, 1, 'ascii');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  octal(b, 329, 8, e.devmajor ?? 0);
  octal(b, 337, 8, e.devminor ?? 0);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + String(body.length).length;
  if (String(len).length + body.length !== len) len = body.length + String(len).length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** The uncompressed tar of `entries`, in the given order, with the end-of-archive blocks. */
export function rawTar(entries: RawEntry[]): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? '0';
    const content = type === '0' ? Buffer.from(e.content ?? '') : Buffer.alloc(0);
    const linkname = e.linkname ?? '';
    const records: Buffer[] = [];
    if (Buffer.byteLength(e.name) > 100) records.push(paxRecord('path', Buffer.from(e.name)));
    if (Buffer.byteLength(linkname) > 100) records.push(paxRecord('linkpath', Buffer.from(linkname)));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${k}`, Buffer.isBuffer(v) ? v : Buffer.from(v)));
    if (records.length) {
      const body = Buffer.concat(records);
      out.push(header('PaxHeaders/x', 'x', { name: '' }, body.length, ''), padded(body));
    }
    out.push(header(e.name.slice(0, 100), type, e, content.length, linkname.slice(0, 100)), padded(content));
  }
  out.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(out);
}

/** {@link rawTar}, gzip-compressed (what a layer blob usually is). */
export function rawTarGz(entries: RawEntry[]): Buffer {
  return gzipSync(rawTar(entries));
}
