import { createHash } from 'node:crypto';
import type { Digest } from './types.js';
import { OcistackError } from '../errors.js';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function assertDigest(s: string, context = 'digest'): Digest {
  if (!isDigest(s)) {
    throw new OcistackError(`invalid ${context} "${s}"`, {
      code: 'BAD_DIGEST',
      hint: 'digests are "sha256:" followed by 64 lowercase hex characters',
    });
  }
  return s;
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part of a digest: what goes into file names. */
export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}

/**
 * Canonical JSON for content we create: keys in insertion order (our builders
 * insert them in a fixed order), no whitespace. Same input, same bytes, same digest.
 */
export function canonicalJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Text gathered before it is hashed: few hash updates, and never the whole document in one string. */
const JSON_HASH_CHUNK = 64 * 1024;

/**
 * sha256 of {@link canonicalJson}(value), the same digest, without the
 * document ever being one string: arrays and plain objects are written out
 * member by member into the hash, everything else (strings, numbers, small
 * arrays, objects with toJSON) by JSON.stringify itself. A cache key over
 * 85,000 file entries is ~15 MB of JSON; this holds 64 KiB of it at a time.
 */
export function sha256Json(value: unknown): Digest {
  const hash = createHash('sha256');
  let buf = '';
  const out = (s: string): void => {
    buf += s;
    if (buf.length >= JSON_HASH_CHUNK) {
      hash.update(buf, 'utf8');
      buf = '';
    }
  };
  // Mirrors JSON.stringify: in arrays a value it cannot write is null; in objects such a member is left out.
  const writable = (v: unknown): boolean => v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
  const write = (v: unknown): void => {
    if (Array.isArray(v) && v.length > 16) {
      out('[');
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out(',');
        if (writable(v[i])) write(v[i]);
        else out('null');
      }
      out(']');
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
      out('{');
      let first = true;
      for (const [k, m] of Object.entries(v)) {
        if (!writable(m)) continue;
        out(first ? JSON.stringify(k) + ':' : ',' + JSON.stringify(k) + ':');
        first = false;
        write(m);
      }
      out('}');
    } else out(JSON.stringify(v) ?? 'null');
  };
  write(value);
  if (buf) hash.update(buf, 'utf8');
  return `sha256:${hash.digest('hex')}`;
}
