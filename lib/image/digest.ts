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
