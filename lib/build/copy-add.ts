/**
 * What ADD does beyond COPY: unpack local tar archives (plain, gzip, bzip2,
 * xz) and download http(s) URLs (with `--checksum`). Git URLs are refused
 * with a clear error for now.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { OcistackError, type SourceLocation } from '../errors.js';
import { decompressFile, detectCompression, looksLikeTar, readHead } from '../layer/decompress.js';
import { indexEntryOf } from '../layer/layer-index.js';
import { PaxXattrTracker } from '../layer/pax.js';
import type { SourceStat } from './copy-source.js';
import { redactUrlCredentials } from '../redact.js';

/** `http://` or `https://`. */
export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Git sources as BuildKit recognises them. */
export function isGitUrl(s: string): boolean {
  if (/^(git:\/\/|git@|github\.com\/|ssh:\/\/)/i.test(s)) return true;
  if (isHttpUrl(s)) {
    try {
      const u = new URL(s);
      return /\.git$/.test(u.pathname.replace(/\/+$/, ''));
    } catch {
      return false;
    }
  }
  return false;
}

export interface Downloaded {
  file: string;
  size: number;
  /** From Last-Modified, seconds since epoch. */
  mtime?: number;
  /** File name for a destination ending in `/`: last path segment of the URL. */
  name: string;
}

/**
 * A URL without its userinfo, and the Basic authorization that userinfo
 * stands for (Go's net/http, which BuildKit and Docker download with, sends
 * `user:password@` as Basic auth).
 */
export function splitUserinfo(url: URL): { url: URL; authorization?: string } {
  if (!url.username && !url.password) return { url };
  const bare = new URL(url.href);
  bare.username = '';
  bare.password = '';
  const pair = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  return { url: bare, authorization: `Basic ${Buffer.from(pair).toString('base64')}` };
}

const REDIRECTS = [301, 302, 303, 307, 308];

/**
 * GET `url`, following up to 10 redirects by hand so that the userinfo's
 * Basic auth goes where Go's client sends it: to the URL itself, to a
 * relative Location (Go's URL.ResolveReference keeps the userinfo then), and
 * to an absolute Location only when that carries userinfo of its own.
 */
async function fetchFollowing(url: string): Promise<{ res: Response; url: URL }> {
  let next = splitUserinfo(new URL(url));
  for (let hop = 0; ; hop++) {
    const res = await fetch(next.url, { redirect: 'manual', headers: next.authorization ? { Authorization: next.authorization } : {} });
    const loc = res.headers.get('location');
    if (!REDIRECTS.includes(res.status) || !loc || hop >= 10) return { res, url: next.url };
    await res.body?.cancel().catch(() => undefined);
    const relative = !/^([a-z][a-z0-9+.-]*:|\/\/)/i.test(loc);
    next = relative ? { url: new URL(loc, next.url), authorization: next.authorization } : splitUserinfo(new URL(loc));
  }
}

/** Download a URL into `tmpDir`, verifying `checksum` (`sha256:<hex>`) when given. */
export async function downloadUrl(rawUrl: string, tmpDir: string, checksum: string | undefined, location: SourceLocation): Promise<Downloaded> {
  if (checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(checksum)) {
    throw new OcistackError(`invalid --checksum "${checksum}"`, { code: 'ADD_CHECKSUM', location, hint: 'use --checksum=sha256:<64 hex characters>' });
  }
  // `url` is what messages show: never the userinfo.
  const url = redactUrlCredentials(rawUrl);
  let res: Response;
  let finalUrl: URL;
  try {
    ({ res, url: finalUrl } = await fetchFollowing(rawUrl));
  } catch (e) {
    throw new OcistackError(`cannot download ${url}: ${redactUrlCredentials((e as Error).message)}`, {
      code: 'ADD_DOWNLOAD',
      location,
      hint: 'check the URL and that the host is reachable from this machine',
      cause: e,
    });
  }
  if (!res.ok || !res.body) {
    throw new OcistackError(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`, {
      code: 'ADD_DOWNLOAD',
      location,
      hint: 'check the URL; the server did not return the file',
    });
  }
  const file = path.join(tmpDir, `download-${createHash('sha256').update(rawUrl).digest('hex').slice(0, 16)}`);
  const hash = createHash('sha256');
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), counter, createWriteStream(file, { mode: 0o600 }));
  const got = `sha256:${hash.digest('hex')}`;
  if (checksum !== undefined && got !== checksum) {
    await fsp.rm(file, { force: true });
    throw new OcistackError(`checksum mismatch for ${url}: expected ${checksum}, got ${got}`, {
      code: 'ADD_CHECKSUM',
      location,
      hint: 'the file changed on the server or --checksum is wrong; check the published checksum',
    });
  }
  const lm = res.headers.get('last-modified');
  const parsed = lm ? Date.parse(lm) : NaN;
  const urlPath = finalUrl.pathname;
  const name = decodeURIComponent(urlPath.slice(urlPath.lastIndexOf('/') + 1)) || 'index.html';
  return { file, size, mtime: Number.isFinite(parsed) ? Math.floor(parsed / 1000) : undefined, name };
}

/** One entry of an unpacked archive, relative to the archive root. */
export interface ArchiveEntry {
  rel: string;
  stat: SourceStat;
  /** Extracted bytes (files). */
  file?: string;
  /** Hard link: rel of the entry it links to. */
  hardlinkTo?: string;
}

class NotATar extends Error {}

/** Passes bytes through, failing with NotATar if the first block is no tar header. */
class TarSniffer extends Transform {
  private head = Buffer.alloc(0);
  private decided = false;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.decided) return cb(null, chunk);
    this.head = Buffer.concat([this.head, chunk]);
    if (this.head.length < 512) return cb();
    this.decided = true;
    if (!looksLikeTar(this.head)) return cb(new NotATar());
    cb(null, this.head);
  }
  override _flush(cb: TransformCallback): void {
    if (!this.decided) return cb(new NotATar());
    cb();
  }
}

/**
 * If `file` is a tar archive (maybe compressed), unpack it into `tmpDir` and
 * return its entries; otherwise undefined (ADD then copies the file as is).
 */
export async function readArchive(file: string, displayName: string, tmpDir: string, location: SourceLocation): Promise<ArchiveEntry[] | undefined> {
  const compression = detectCompression(await readHead(file, 8));
  if (compression === 'none' && !looksLikeTar(await readHead(file, 512))) return undefined;
  const entries = new Map<string, ArchiveEntry>();
  const pending: Promise<void>[] = [];
  let n = 0;
  // node-tar drops xattr PAX records; the tracker reads them on the way in.
  const pax = new PaxXattrTracker();
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      const ie = indexEntryOf(entry, pax.take(entry));
      const rel = ie.path.slice(1);
      if (rel === '' || ie.type === 'other' || ie.type === 'whiteout' || ie.type === 'opaque') {
        entry.resume();
        return;
      }
      const stat: SourceStat = { type: ie.type === 'hardlink' ? 'file' : ie.type, mode: ie.mode, uid: ie.uid, gid: ie.gid, size: ie.size, mtime: ie.mtime, inode: `archive:${rel}`, nlink: 1 };
      if (ie.type === 'symlink') stat.linkTarget = ie.linkTarget;
      if (ie.xattrs) stat.xattrs = ie.xattrs;
      const ae: ArchiveEntry = { rel, stat };
      if (ie.type === 'hardlink') {
        ae.hardlinkTo = ie.linkTarget!.slice(1);
        entry.resume();
      } else if (ie.type === 'file') {
        const out = path.join(tmpDir, `a${n++}`);
        ae.file = out;
        pending.push(pipeline(entry as unknown as NodeJS.ReadableStream, createWriteStream(out)));
      } else entry.resume();
      entries.set(rel, ae);
    },
  });
  try {
    await pipeline(
      decompressFile(file, compression, displayName),
      new TarSniffer(),
      pax.stream(),
      parser as unknown as NodeJS.WritableStream,
    );
    await Promise.all(pending);
  } catch (e) {
    if (e instanceof NotATar) return undefined;
    if (e instanceof OcistackError) throw new OcistackError(e.message, { code: e.code, hint: e.hint, location, cause: e });
    throw new OcistackError(`cannot unpack ${displayName}: ${(e as Error).message}`, {
      code: 'ADD_ARCHIVE',
      location,
      hint: 'the archive is corrupt or truncated',
      cause: e,
    });
  }
  // Hard links share the bytes (and identity) of their target.
  for (const e of entries.values()) {
    if (!e.hardlinkTo) continue;
    const t = entries.get(e.hardlinkTo);
    if (t?.file) {
      e.file = t.file;
      e.stat = { ...t.stat };
      t.stat.nlink = e.stat.nlink = 2;
    } else entries.delete(e.rel);
  }
  return [...entries.values()];
}
