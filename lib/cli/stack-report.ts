/**
 * What `ocistack stack ...` prints: the listing of `stack list`, the lines
 * naming where the target, credentials and trust came from (never a secret:
 * only GiteaAccess's `*Source` strings are printed), and the summary table
 * after a build or push.
 */
import * as path from 'node:path';
import { isOcistackError } from '../errors.js';
import type { StackListing } from '../stack/batch.js';
import type { StackPin } from '../stack/providers.js';
import type { UnpinnableReference } from '../stack/pin-list.js';
import type { GiteaAccess, StackLocation, StackResult } from '../stack/types.js';

function where(loc: StackLocation, base: string): string {
  const file = path.relative(base, loc.file) || loc.file;
  return `${file}:${loc.line}${loc.column ? `:${loc.column}` : ''}`;
}

function rel(file: string, base: string): string {
  return path.relative(base, file) || '.';
}

/** `stack list`: per image its Dockerfile, target references and the manifests using it, then the model's warnings. */
export function formatListing(l: StackListing): string {
  const root = l.model.root;
  const out: string[] = [`stack ${root}`, `registry ${l.access.target.registry}/${l.access.target.owner} (from ${l.access.target.source})`];
  if (l.model.apps.length) {
    out.push('', 'apps:');
    for (const a of l.model.apps) {
      const dirs = a.cnoeDirs.map((d) => rel(d.dir, root)).join(', ') || 'no cnoe:// directory';
      out.push(`  ${a.name} (${a.kind}, ${rel(a.file, root)}) -> ${dirs}`);
    }
  }
  out.push('', l.images.length ? 'images:' : 'images: none');
  for (const { image, references } of l.images) {
    out.push(`  ${image.name}`);
    out.push(`    dockerfile  ${rel(image.dockerfile, root)}${image.target ? ` (target ${image.target})` : ''}`);
    out.push(`    context     ${rel(image.context, root)}`);
    for (const r of references) out.push(`    pushed as   ${r}`);
    if (image.origin.kind === 'config') out.push(`    from        ${where(image.origin.location, root)}`);
    if (!image.usedBy.length) out.push('    used by     nothing in the stack');
    for (const u of image.usedBy) out.push(`    used by     ${where(u.location, root)} (${u.text})`);
  }
  if (l.model.unmatched.length) {
    out.push('', 'references with no image in the stack:');
    for (const u of l.model.unmatched) out.push(`  ${where(u.location, root)}: ${u.text}`);
  }
  const warnings = [...l.model.warnings, ...l.access.warnings.map((message) => ({ message, location: undefined }))];
  if (warnings.length) out.push('');
  for (const w of warnings) out.push(`warning: ${w.location ? `${where(w.location, root)}: ` : ''}${w.message}`);
  return `${out.join('\n')}\n`;
}

/** Where the target, credentials and TLS trust came from: one line each, sources only. */
export function formatAccessSources(a: GiteaAccess): string {
  return [
    `registry ${a.target.registry}/${a.target.owner} (from ${a.target.source})`,
    `credentials: ${a.credentialSource}`,
    `TLS trust: ${a.trustSource}`,
    ...a.warnings.map((w) => `warning: ${w}`),
  ].join('\n') + '\n';
}

function fmtSize(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function fmtTime(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/** The table after a batch: image, status, digest (12 hex), size, time, cached steps; then each failure's error. */
export function formatSummary(r: StackResult): string {
  const rows = [['IMAGE', 'STATUS', 'DIGEST', 'SIZE', 'TIME', 'CACHED']];
  for (const i of r.images) {
    rows.push([
      i.image.name,
      i.status,
      i.manifestDigest ? i.manifestDigest.slice(7, 19) : '-',
      fmtSize(i.size),
      fmtTime(i.durationMs),
      String(i.cachedSteps),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const lines = rows.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
  const failed = r.images.filter((i) => i.status === 'failed').length;
  const skipped = r.images.filter((i) => i.status === 'skipped').length;
  const done = r.images.length - failed - skipped;
  lines.push(`${done} of ${r.images.length} ${r.images.length === 1 ? 'image' : 'images'} ok${failed ? `, ${failed} failed` : ''}${skipped ? `, ${skipped} skipped` : ''}`);
  return `${lines.join('\n')}\n`;
}

/** The errors of failed (and skipped) images, one `error: [name] ...` block each, for stderr. */
export function formatFailures(r: StackResult): string {
  let out = '';
  for (const i of r.images) {
    if (!i.error || i.status !== 'failed') continue;
    const text = isOcistackError(i.error) ? i.error.format() : i.error.message;
    out += `error: [${i.image.name}] ${text}\n`;
  }
  return out;
}

/** `--pin`: each reference and its digest-pinned form. */
export function formatPins(pins: StackPin[], root: string): string {
  return pins.map((p) => `${where(p.reference.location, root)}  ${p.reference.text} -> ${p.pinned}\n`).join('');
}

/** `--pin`: the references `--write` cannot rewrite, each with its pinned form and why (to pin by hand). */
export function formatUnpinnable(refs: UnpinnableReference[], root: string): string {
  if (!refs.length) return '';
  const n = refs.length === 1 ? '1 reference' : `${refs.length} references`;
  return `${n} cannot be pinned in place (pin by hand):\n` + refs.map((u) => `${where(u.pin.reference.location, root)}  ${u.pin.reference.text} -> ${u.pin.pinned}: ${u.reason}\n`).join('');
}
