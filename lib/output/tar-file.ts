/**
 * Writing an archive of whole files (OCI archive, docker-archive) as a tar,
 * with the byte-exact header code of the layer writer (lib/layer/tar-header.ts).
 * File contents are streamed from disk chunk by chunk, so no blob is ever held
 * in memory whole; each entry's size is checked against what was copied, so a
 * blob that changed under us fails the write instead of corrupting the tar.
 *
 * Entries get fixed metadata (root-owned, 0644 files, 0755 directories, one
 * mtime for all), so the same image gives the same archive bytes.
 */
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { throwIfAborted } from '../abort.js';
import { OcistackError } from '../errors.js';
import { encodeHeader, END_OF_ARCHIVE, paddingFor } from '../layer/tar-header.js';

/** Blob files are read in chunks of this size. */
const CHUNK = 1 << 20;

export class TarFileWriter {
  private constructor(
    private readonly fh: fsp.FileHandle,
    private readonly mtime: number,
    private readonly signal?: AbortSignal,
  ) {}

  /** Create (exclusively) `file` and write entries to it; `mtime` (seconds) is every entry's. */
  static async create(file: string, opts: { mtime?: number; signal?: AbortSignal } = {}): Promise<TarFileWriter> {
    return new TarFileWriter(await fsp.open(file, 'wx', 0o644), opts.mtime ?? 0, opts.signal);
  }

  /** write(2) may write less than asked (a full disk reports it on the next call): loop until all is written. */
  private async put(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) off += (await this.fh.write(buf, off, buf.length - off)).bytesWritten;
  }

  async dir(name: string): Promise<void> {
    await this.put(encodeHeader({ name: name.endsWith('/') ? name : `${name}/`, type: '5', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: this.mtime }));
  }

  async bytes(name: string, data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    await this.put(encodeHeader({ name, type: '0', mode: 0o644, uid: 0, gid: 0, size: buf.length, mtime: this.mtime }));
    await this.put(buf);
    await this.put(paddingFor(buf.length));
  }

  /** Copy the file `src` (of `size` bytes) in as `name`. */
  async file(name: string, src: string, size: number): Promise<void> {
    throwIfAborted(this.signal);
    await this.put(encodeHeader({ name, type: '0', mode: 0o644, uid: 0, gid: 0, size, mtime: this.mtime }));
    let copied = 0;
    // `end` is inclusive; a longer file is caught below by its size, not by reading on.
    if (size > 0) {
      for await (const chunk of createReadStream(src, { highWaterMark: CHUNK, end: size - 1 })) {
        await this.put(chunk as Buffer);
        copied += (chunk as Buffer).length;
        throwIfAborted(this.signal);
      }
    }
    const actual = (await fsp.stat(src)).size;
    if (copied !== size || actual !== size) {
      throw new OcistackError(`${src} has ${actual} bytes, expected ${size}`, { code: 'BLOB_MISSING', hint: 'the blob store changed during the write; build again' });
    }
    await this.put(paddingFor(size));
  }

  /** End the archive and flush it to disk. */
  async finish(): Promise<void> {
    await this.put(END_OF_ARCHIVE);
    await this.fh.sync();
    await this.fh.close();
  }

  /** Close without finishing (after a failure; the caller removes the file). */
  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}
