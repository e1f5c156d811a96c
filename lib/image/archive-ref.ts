/**
 * `docker-archive:` reference parsing, kept apart from lib/image/archive.ts so
 * commands that only parse a location do not load node-tar at start-up.
 */

/** Parse `FILE[:REF]` or `FILE[:@INDEX]` (what follows `docker-archive:`). */
export function parseArchiveRef(spec: string): { file: string; ref?: string; index?: number } {
  const at = /^(.*):@(\d+)$/.exec(spec);
  if (at) return { file: at[1]!, index: Number(at[2]) };
  // The file is everything up to the first ':' (skopeo's rule); a path with ':' cannot be named.
  const c = spec.indexOf(':');
  if (c > 0) return { file: spec.slice(0, c), ref: spec.slice(c + 1) || undefined };
  return { file: spec };
}
