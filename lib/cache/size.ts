/**
 * Sizes for people: `--keep-storage 500MB` in, `1.2 GB` out.
 *
 * Units as docker's `--keep-storage`: kB/MB/GB/TB are powers of 1000,
 * KiB/MiB/GiB/TiB powers of 1024; a single letter (k, m, g, t) and a plain
 * number of bytes are accepted too (single letters as powers of 1024, as
 * docker's RAMInBytes reads them).
 */
import { UsageError } from '../errors.js';

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
  k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4,
};

/** Bytes of a size such as `500MB`, `2GiB`, `1.5g`, `1048576`. @throws UsageError */
export function parseSize(text: string, flag = '--keep-storage'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(`${flag} takes a size such as 500MB, 2GiB or 1073741824, not "${text}"`, 'units: B, kB, MB, GB, TB (1000s), KiB, MiB, GiB, TiB (1024s)');
  }
  return Math.floor(Number(m[1]) * unit);
}

/** `0 B`, `12.3 kB`, `1.20 GB` (powers of 1000, as docker and du -h --si print). */
export function formatSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}
