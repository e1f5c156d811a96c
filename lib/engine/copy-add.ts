/**
 * What ADD does beyond COPY: unpack local tar archives (plain, gzip, bzip2,
 * xz) keeping every member (lib/layer/tar-reader.ts), and download http(s)
 * URLs (with `--checksum`). Git URLs are refused with a clear error for now.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { pipeline } from 'node:stream';
import { OcistackError, type SourceLocation } from '../errors.js';
import { abortError, throwIfAborted } from '../abort.js';
import { DEFAULT_TIMEOUTS, formatDuration } from '../registry/http.js';
import { decompressFile, detectCompression, looksLikeTar, readHead } from '../layer/decompress.js';
import { readTar } from '../layer/tar-reader.js';
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

/** The registry client's idle limit, for the same reason. */
const DEFAULT_DOWNLOAD_IDLE_MS = DEFAULT_TIMEOUTS.idleMs;

/** Aborts its signal after `ms` without a {@link touch}. */
class IdleWatch {
  private readonly ctl = new AbortController();
  private timer: NodeJS.Timeout;
  constructor(readonly ms: number) {
    this.timer = setTimeout(() => this.ctl.abort(), ms);
  }
  get signal(): AbortSignal {
    return this.ctl.signal;
  }
  touch(): void {
    this.timer.refresh();
  }
  stop(): void {
    clearTimeout(this.timer);
  }
}

/**
 * GET `url`, following up to 10 redirects by hand so that the userinfo's
 * Basic auth goes where Go's client sends it: to the URL itself, to a
 * relative Location (Go's URL.ResolveReference keeps the userinfo then), and
 * to an absolute Location only when that carries userinfo of its own.
 */
async function fetchFollowing(url: string, signal: AbortSignal): Promise<{ res: Response; url: URL }> {
  let next = splitUserinfo(new URL(url));
  for (let hop = 0; ; hop++) {
    const res = await fetch(next.url, { redirect: 'manual', signal, headers: next.authorization ? { Authorization: next.authorization } : {} });
    const loc = res.headers.get('location');
    if (!REDIRECTS.includes(res.status) || !loc || hop >= 10) return { res, url: next.url };
    await res.body?.cancel().catch(() => undefined);
    const relative = !/^([a-z][a-z0-9+.-]*:|\/\/)/i.test(loc);
    next = relative ? { url: new URL(loc, next.url), authorization: next.authorization } : splitUserinfo(new URL(loc));
  }
}

export interface DownloadOptions {
  /** The build's signal: aborting cuts the download (ABORTED). */
  signal?: AbortSignal;
  /**
   * Longest silence allowed, before the answer and between body chunks
   * (default 30 s, the registry client's idle limit; `--timeout` sets both):
   * a server that stops sending fails the step instead of hanging the build.
   */
  idleMs?: number;
}

/** Download a URL into `tmpDir`, verifying `checksum` (`sha256:<hex>`) when given. */
export async function downloadUrl(rawUrl: string, tmpDir: string, checksum: string | undefined, location: SourceLocation, opts: DownloadOptions = {}): Promise<Downloaded> {
  if (checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(checksum)) {
    throw new OcistackError(`invalid --checksum "${checksum}"`, { code: 'ADD_CHECKSUM', location, hint: 'use --checksum=sha256:<64 hex characters>' });
  }
  // `url` is what messages show: never the userinfo.
  const url = redactUrlCredentials(rawUrl);
  throwIfAborted(opts.signal);
  const idle = new IdleWatch(opts.idleMs ?? DEFAULT_DOWNLOAD_IDLE_MS);
  const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
  // Why a download stopped: the build's abort, our stall limit, or the network.
  const failure = (e: unknown): OcistackError => {
    if (opts.signal?.aborted) return abortError(opts.signal);
    if (idle.signal.aborted) {
      return new OcistackError(`download of ${url} stalled: no data for ${formatDuration(idle.ms)}`, {
        code: 'ADD_DOWNLOAD', location, cause: e,
        hint: 'check that the server is up; on a slow link raise the limit with --timeout (e.g. --timeout 2m)',
      });
    }
    return new OcistackError(`cannot download ${url}: ${redactUrlCredentials((e as Error).message)}`, {
      code: 'ADD_DOWNLOAD', location, cause: e, hint: 'check the URL and that the host is reachable from this machine',
    });
  };
  let res: Response;
  let finalUrl: URL;
  try {
    ({ res, url: finalUrl } = await fetchFollowing(rawUrl, signal));
  } catch (e) {
    idle.stop();
    if (opts.signal?.aborted || idle.signal.aborted) throw failure(e);
    throw new OcistackError(`cannot download ${url}: ${redactUrlCredentials((e as Error).message)}`, {
      code: 'ADD_DOWNLOAD',
      location,
      hint: 'check the URL and that the host is reachable from this machine',
      cause: e,
    });
  }
  if (!res.ok || !res.body) {
    idle.stop();
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
      idle.touch();
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    await pipelineAsync(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), counter, createWriteStream(file, { mode: 0o600 }));
  } catch (e) {
    await fsp.rm(file, { force: true });
    throw failure(e);
  } finally {
    idle.stop();
  }
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
  /** Path below the destination, normalised ('' for the archive's root directory). */
  rel: string;
  stat: SourceStat;
  /** Extracted bytes (files). */
  file?: string;
  /** Device nodes and FIFOs (stat.type is 'other'). */
  special?: { type: 'char' | 'block' | 'fifo'; devmajor: number; devminor: number };
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
 * A member's path below the destination: `./a//b/` -> `a/b`. A name that
 * climbs above the destination with `..` is refused, as Docker refuses it
 * ("breakout"), instead of landing somewhere else.
 */
function memberRel(name: string, fail: (m: string, h: string) => OcistackError): string {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw fail(`archive member "${name}" points outside the destination directory`, 'rebuild the archive with paths relative to its root (no leading ..)');
      out.pop();
    } else out.push(part);
  }
  return out.join('/');
}

/**
 * If `file` is a tar archive (maybe compressed), unpack it into `tmpDir` and
 * return its entries in archive order (a name given twice appears twice:
 * the later one wins, as when extracting); otherwise undefined (ADD then
 * copies the file as is). Every member is kept: sparse files are expanded,
 * devices and FIFOs kept as entries, hard links share their target's
 * identity; what cannot be kept is an error naming the member.
 */
export async function readArchive(file: string, displayName: string, tmpDir: string, location: SourceLocation): Promise<ArchiveEntry[] | undefined> {
  const compression = detectCompression(await readHead(file, 8));
  if (compression === 'none' && !looksLikeTar(await readHead(file, 512))) return undefined;
  const fail = (message: string, hint: string): OcistackError => new OcistackError(`${displayName}: ${message}`, { code: 'ADD_ARCHIVE', location, hint });
  const out: ArchiveEntry[] = [];
  /** Latest entry of each path, for hard links (which must name an earlier member). */
  const byRel = new Map<string, ArchiveEntry>();
  let n = 0;
  // Errors of the decompressor or sniffer destroy `bytes`, which ends the reader with them.
  const bytes = pipeline(decompressFile(file, compression, displayName), new TarSniffer(), () => undefined);
  try {
    for await (const m of readTar(bytes)) {
      const rel = memberRel(m.name, fail);
      const shown = JSON.stringify(m.name);
      const base = rel.slice(rel.lastIndexOf('/') + 1);
      if (base.startsWith('.wh.')) {
        throw fail(`archive member ${shown} has an OCI whiteout name, which a layer cannot hold as a file`, 'rename the file in the archive (names starting with .wh. mark deletions in image layers)');
      }
      if (m.type === 'other') {
        throw fail(`archive member ${shown} has tar type '${m.typeflag}', which ADD cannot unpack`, 'rebuild the archive with regular files, directories, links, devices or FIFOs only');
      }
      if (rel === '' && m.type !== 'dir') throw fail(`archive member ${shown} has no name`, 'rebuild the archive; every member but the root directory needs a name');
      const stat: SourceStat = { type: 'other', mode: m.mode, uid: m.uid, gid: m.gid, size: 0, mtime: m.mtime, inode: `archive:${n}`, nlink: 1 };
      if (m.xattrs) stat.xattrs = m.xattrs;
      let ae: ArchiveEntry;
      switch (m.type) {
        case 'file': {
          const dest = path.join(tmpDir, `a${n}`);
          await m.extract(dest);
          ae = { rel, stat: { ...stat, type: 'file', size: m.size }, file: dest };
          break;
        }
        case 'dir':
          ae = { rel, stat: { ...stat, type: 'dir' } };
          break;
        case 'symlink':
          if (m.linkname === '') throw fail(`archive member ${shown} is a symlink with an empty target`, 'fix the symlink in the archive');
          ae = { rel, stat: { ...stat, type: 'symlink', linkTarget: m.linkname } };
          break;
        case 'char':
        case 'block':
        case 'fifo':
          ae = { rel, stat, special: { type: m.type, devmajor: m.devmajor, devminor: m.devminor } };
          break;
        case 'hardlink': {
          const targetRel = memberRel(m.linkname, () => fail(`hard link ${shown} points to "${m.linkname}", outside the archive`, 'hard links in an archive must name an earlier member'));
          const t = byRel.get(targetRel);
          if (!t) throw fail(`hard link ${shown} points to "${m.linkname}", which is not an earlier member of the archive`, 'rebuild the archive so that each hard link follows the file it links to');
          if (t.stat.type === 'dir') throw fail(`hard link ${shown} points to the directory "${m.linkname}"`, 'directories cannot be hard-linked; rebuild the archive');
          if (t.stat.type === 'file') {
            // Same bytes and identity: the layer gets one file and a hard link to it.
            t.stat.nlink = 2;
            ae = { rel, stat: t.stat, file: t.file };
          } else ae = { ...t, rel, stat: { ...t.stat, inode: `archive:${n}` } }; // a link to a symlink or device: an equal entry
          break;
        }
        default:
          throw fail(`archive member ${shown} has tar type '${m.typeflag}', which ADD cannot unpack`, 'rebuild the archive with regular files, directories, links, devices or FIFOs only');
      }
      n++;
      out.push(ae);
      byRel.set(rel, ae);
    }
  } catch (e) {
    bytes.destroy();
    if (e instanceof NotATar) return undefined;
    if (e instanceof OcistackError) throw new OcistackError(e.message, { code: e.code, hint: e.hint, location, cause: e });
    throw new OcistackError(`cannot unpack ${displayName}: ${(e as Error).message}`, {
      code: 'ADD_ARCHIVE',
      location,
      hint: 'the archive is corrupt or truncated',
      cause: e,
    });
  }
  return out;
}
