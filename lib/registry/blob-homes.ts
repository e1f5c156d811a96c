/**
 * Which repository of a registry is known to hold a blob, remembered for the
 * life of the process from pulls and pushes. A push to another repository of
 * the same registry can then mount the blob (`?mount=&from=`) instead of
 * uploading it again.
 */
import type { Digest } from '../image/types.js';

const homes = new Map<string, Map<Digest, string>>();

/** Remember that `registry/repository` holds `digest`. */
export function rememberBlob(registry: string, repository: string, digest: Digest): void {
  let m = homes.get(registry);
  if (!m) homes.set(registry, (m = new Map()));
  m.set(digest, repository);
}

/** A repository of `registry` other than `except` known to hold `digest`. */
export function knownBlobHome(registry: string, digest: Digest, except: string): string | undefined {
  const repo = homes.get(registry)?.get(digest);
  return repo && repo !== except ? repo : undefined;
}

/** Forget a blob location (the mount was refused). */
export function forgetBlob(registry: string, digest: Digest): void {
  homes.get(registry)?.delete(digest);
}
