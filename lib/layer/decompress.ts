/**
 * Recognise and undo the compressions found in layers and ADD archives.
 * gzip uses node's zlib; bzip2, xz and zstd have no decoder in node 20, so
 * Debian's `bzip2 -dc`, `xz -dc` and `zstd -dc` run as child processes
 * (a clear error says which package to install when one is missing).
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { OcistackError } from '../errors.js';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** Compression from the first bytes of a file. */
export function detectCompression(head: Uint8Array): Compression {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (b.length >= 6 && b[0] === 0xfd && b.toString('latin1', 1, 6) === '7zXZ\0') return 'xz';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Whether bytes (decompressed) start like a tar archive: a valid header checksum. */
export function looksLikeTar(block: Uint8Array): boolean {
  if (block.length < 512) return false;
  const b = Buffer.from(block.buffer, block.byteOffset, 512);
  const stored = parseInt(b.toString('latin1', 148, 156).replace(/\0.*$/, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  return sum === stored && b[0] !== 0;
}

/** Read up to `n` first bytes of a file. */
export async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

const TOOLS: Record<Exclude<Compression, 'none' | 'gzip'>, { cmd: string; pkg: string }> = {
  bzip2: { cmd: 'bzip2', pkg: 'bzip2' },
  xz: { cmd: 'xz', pkg: 'xz-utils' },
  zstd: { cmd: 'zstd', pkg: 'zstd' },
};

/** A stream of the decompressed bytes of `file`. */
export function decompressFile(file: string, compression: Compression, what = file): Readable {
  if (compression === 'none') return createReadStream(file);
  if (compression === 'gzip') return createReadStream(file).pipe(zlib.createGunzip());
  const tool = TOOLS[compression];
  const out = new PassThrough();
  const child = spawn(tool.cmd, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('error', (e: NodeJS.ErrnoException) => {
    out.destroy(
      e.code === 'ENOENT'
        ? new OcistackError(`cannot decompress ${what}: ${compression} needs the "${tool.cmd}" program, which is not installed`, {
            code: 'DECOMPRESS',
            hint: `install it (Debian: apt-get install ${tool.pkg}) or use a gzip-compressed archive`,
          })
        : e,
    );
  });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else {
      out.destroy(new OcistackError(`cannot decompress ${what}: ${tool.cmd} failed: ${stderr.trim()}`, { code: 'DECOMPRESS', hint: 'the archive is corrupt or not what its header says' }));
    }
  });
  const input = createReadStream(file);
  input.on('error', (e) => out.destroy(e));
  input.pipe(child.stdin);
  child.stdin.on('error', () => {
    /* reported through close/error */
  });
  // End `out` only once the exit status says the data was complete.
  child.stdout.pipe(out, { end: false });
  return out;
}
