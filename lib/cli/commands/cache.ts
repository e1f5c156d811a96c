/**
 * `ocistack cache ls|du|prune`: look at and trim the cache dir. Thin: the
 * work is in lib/cache/usage.ts and lib/cache/prune.ts.
 */
import { UsageError } from '../../errors.js';
import { defaultCacheDir } from '../../image/store.js';
import { pruneCache } from '../../cache/prune.js';
import { formatSize, parseSize } from '../../cache/size.js';
import { diskUsage, scanCache } from '../../cache/usage.js';
import { digestHex } from '../../image/digest.js';
import { flagBool, flagString, parseArgs } from '../args.js';
import type { CliCommand, CliIO } from '../types.js';
import * as path from 'node:path';

const HELP = `Usage: ocistack cache ls [--format json]
       ocistack cache du [--format json]
       ocistack cache prune [--keep-storage SIZE] [--all] [--format json]

Look at and trim the build cache ($OCISTACK_CACHE_DIR or ~/.cache/ocistack).

  ls      one line per instruction cache record: key, last use, size of its
          layers, the step it came from (most recently used first)
  du      disk use per kind: blobs of records, of local images, of pulled or
          untagged images, unreferenced blobs; snapshots; RUN cache mounts;
          context stat caches; layer indexes
  prune   remove what nothing uses: unreferenced blobs, snapshots and layer
          indexes of blobs that are gone, temp files of dead processes.
          Records, local images (build -t) and pulled images stay.

Flags:
      --cache-dir DIR        the cache dir
      --format FORMAT        "table" (default) or "json"
      --keep-storage SIZE    prune: then remove least recently used records
                             (and what only they needed) until the build cache
                             is at most SIZE (500MB, 2GiB, ...)
      --all                  prune: remove every record, blob, snapshot, cache
                             mount and stat cache except what local images need
  -f, --force                prune: accepted for docker compatibility (prune
                             never asks for confirmation)

Prune is safe while builds run: records go first, and while another build is
running blobs, snapshots and cache mounts are kept (run prune again later).
`;

function cacheDirOf(p: ReturnType<typeof parseArgs>, io: CliIO): string {
  const d = flagString(p, 'cache-dir');
  return d ? path.resolve(io.cwd, d) : defaultCacheDir(io.env);
}

function formatOf(p: ReturnType<typeof parseArgs>): 'table' | 'json' {
  const f = flagString(p, 'format') ?? 'table';
  if (f !== 'table' && f !== 'json') throw new UsageError(`--format takes "table" or "json", not "${f}"`);
  return f;
}

function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export const command: CliCommand = {
  name: 'cache',
  summary: 'List, measure and prune the build cache',
  help: HELP,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    const specs = [
      { name: 'cache-dir', type: 'string' as const },
      { name: 'format', type: 'string' as const },
      ...(sub === 'prune' ? [{ name: 'keep-storage', type: 'string' as const }, { name: 'all', type: 'boolean' as const }, { name: 'force', short: 'f', type: 'boolean' as const }] : []),
    ];
    if (sub !== 'ls' && sub !== 'du' && sub !== 'prune') {
      throw new UsageError(sub && !sub.startsWith('-') ? `unknown cache command "${sub}"` : 'ocistack cache needs a command: ls, du or prune', 'see "ocistack cache --help"');
    }
    const p = parseArgs(rest, specs, `cache ${sub}`);
    if (p.positionals.length) throw new UsageError(`ocistack cache ${sub} takes no arguments, got "${p.positionals[0]}"`);
    const format = formatOf(p);
    const cacheDir = cacheDirOf(p, io);
    const out = (s: string): void => void io.stdout.write(s);

    if (sub === 'ls') {
      const scan = await scanCache(cacheDir, { sizes: false });
      const rows = [...scan.records].sort((a, b) => b.lastUsedMs - a.lastUsedMs);
      if (format === 'json') {
        out(`${JSON.stringify(rows.map((r) => ({ key: r.record.key, kind: r.record.kind, description: r.record.description, created: r.record.created, lastUsed: new Date(r.lastUsedMs).toISOString(), size: r.size, layers: r.record.layers.map((l) => l.digest) })), null, 2)}\n`);
        return 0;
      }
      out(`${'KEY'.padEnd(14)}${'LAST USED'.padEnd(11)}${'SIZE'.padStart(9)}  DESCRIPTION\n`);
      for (const r of rows) out(`${digestHex(r.record.key).slice(0, 12).padEnd(14)}${ago(r.lastUsedMs).padEnd(11)}${formatSize(r.size).padStart(9)}  ${r.record.description}\n`);
      return 0;
    }

    if (sub === 'du') {
      const u = diskUsage(await scanCache(cacheDir));
      if (format === 'json') {
        out(`${JSON.stringify({ cacheDir, ...u }, null, 2)}\n`);
        return 0;
      }
      const line = (what: string, detail: string, bytes: number): void => out(`${what.padEnd(30)}${detail.padEnd(22)}${formatSize(bytes).padStart(9)}\n`);
      out(`${'KIND'.padEnd(30)}${'COUNT'.padEnd(22)}${'SIZE'.padStart(9)}\n`);
      line('blobs of cache records', `${u.records.blobs} (${u.records.count} records)`, u.records.blobBytes);
      line('blobs of local images', `${u.localImages.blobs} (${u.localImages.count} tags)`, u.localImages.blobBytes);
      line('blobs of pulled/untagged', `${u.pulledOrUntagged.blobs} (${u.pulledOrUntagged.manifests} manifests)`, u.pulledOrUntagged.blobBytes);
      line('unreferenced blobs', String(u.unreferenced.blobs), u.unreferenced.blobBytes);
      line('snapshots', String(u.snapshots.count), u.snapshots.bytes);
      line('RUN cache mounts', String(u.cacheMounts.count), u.cacheMounts.bytes);
      line('context stat caches', String(u.statCaches.count), u.statCaches.bytes);
      line('layer indexes', String(u.layerIndexes.count), u.layerIndexes.bytes);
      line('total', '', u.totalBytes);
      return 0;
    }

    const keepText = flagString(p, 'keep-storage');
    const keepStorage = keepText === undefined ? undefined : parseSize(keepText);
    const all = flagBool(p, 'all');
    if (all && keepStorage !== undefined) throw new UsageError('--all and --keep-storage do not go together', '--all removes everything but local images');
    const r = await pruneCache({ cacheDir, keepStorage, all });
    if (format === 'json') {
      const { removed: _list, ...counts } = r;
      out(`${JSON.stringify(counts, null, 2)}\n`);
    } else {
      out(`Removed ${r.records} records, ${r.blobs} blobs, ${r.snapshots} snapshots, ${r.cacheMounts} cache mounts, ${r.statCaches} stat caches, ${r.layerIndexes} layer indexes, ${r.temps} stale temp files\n`);
      out(`Total reclaimed space: ${formatSize(r.freedBytes)}\n`);
    }
    if (r.runningBuilds > 0) io.stderr.write(`warning: another build is running on ${cacheDir}: blobs, snapshots and cache mounts were kept; run prune again when it is done\n`);
    return 0;
  },
};
