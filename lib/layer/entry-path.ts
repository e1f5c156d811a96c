/**
 * What a layer entry may be called. `writeLayer` is public, so whatever a
 * caller passes is checked and brought to one form here before a header is
 * written: every tar reader (GNU tar, umoci, Go's archive/tar) then sees the
 * same clean relative name, and none of them warns or refuses the member.
 *
 * - leading `/` and `./`, doubled `//` and `.` components are dropped;
 * - `..` is resolved lexically (`a/../b` is `b`) and one that would climb
 *   above the root is refused (GNU tar skips such members with a warning);
 * - an empty name (other than the root directory) and a NUL byte anywhere are
 *   refused: a tar name field ends at NUL, so such a member would silently
 *   become another one.
 */
import { OcistackError, type SourceLocation } from '../errors.js';

/** Typed error for an entry the layer writer cannot store. */
export function layerEntryError(message: string, hint: string, location?: SourceLocation): OcistackError {
  return new OcistackError(message, { code: 'LAYER_ENTRY', hint, location });
}

/** Printable form of a caller's path for messages (NULs shown as \0). */
export function showPath(p: string): string {
  return JSON.stringify(p).replace(/\\u0000/g, '\\0');
}

/**
 * `./usr//bin/x`, `/usr/bin/x/` -> `/usr/bin/x`; `/` (or '') stays `/`.
 * @throws OcistackError LAYER_ENTRY for NUL bytes and `..` escaping the root.
 */
export function normalizeLayerPath(p: string, what = 'path', location?: SourceLocation): string {
  if (typeof p !== 'string') throw layerEntryError(`layer entry ${what} is not a string`, 'give every entry a path such as /usr/bin/x', location);
  if (p.includes('\0')) {
    throw layerEntryError(`layer entry ${what} ${showPath(p)} contains a NUL byte`, 'file names cannot contain NUL; rename the file', location);
  }
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) {
        throw layerEntryError(`layer entry ${what} ${showPath(p)} climbs above the image root`, 'layer paths are relative to the image root; remove the leading ..', location);
      }
      out.pop();
      continue;
    }
    out.push(part);
  }
  return '/' + out.join('/');
}
