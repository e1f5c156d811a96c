/**
 * The caller's subordinate id ranges (/etc/subuid, /etc/subgid, lines
 * `name-or-uid:start:count`), which a rootless step maps into its user
 * namespace as ids 1..count so files keep their real owners.
 */
import * as fs from 'node:fs';

export interface SubIdRange {
  start: number;
  count: number;
}

/** The first range of `name` or `id` in the text of a subuid/subgid file. */
export function parseSubIds(text: string, name: string | undefined, id: number): SubIdRange | undefined {
  for (const line of text.split('\n')) {
    const f = line.trim().split(':');
    if (f.length !== 3 || line.startsWith('#')) continue;
    if (f[0] !== name && f[0] !== String(id)) continue;
    const start = Number(f[1]);
    const count = Number(f[2]);
    if (Number.isInteger(start) && Number.isInteger(count) && count > 0) return { start, count };
  }
  return undefined;
}

export function readSubIds(file: string, name: string | undefined, id: number): SubIdRange | undefined {
  try {
    return parseSubIds(fs.readFileSync(file, 'utf8'), name, id);
  } catch {
    return undefined;
  }
}
