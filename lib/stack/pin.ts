/**
 * Digest pinning after a push (`stack push --pin [--write]`).
 *
 * `pinReferences` says what each reference of a pushed image becomes
 * (`registry/giteaadmin/name:tag@sha256:...`); `writePins` puts exactly that
 * into the files: only the scanned byte ranges change, so comments,
 * formatting, quoting and every other reference stay as they were. A file
 * that changed since it was scanned is refused (nothing is written then), and
 * each file is replaced atomically (a temporary file beside it, renamed over
 * it), so an interrupted write leaves the old file, never half a new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import { isDigest } from '../image/digest.js';
import { STACK_OWNER } from './names.js';
import { displayPath } from './yaml-file.js';
import type { ManifestReference, StackImage } from './types.js';

export interface PinnedReference {
  reference: ManifestReference;
  /** The image of the stack it names. */
  image: string;
  digest: string;
  /** `registry/giteaadmin/name[:tag]@digest`: what the reference means once pinned. */
  pinned: string;
}

export interface WritePinsResult {
  /** Files rewritten (absolute). */
  files: string[];
  written: PinnedReference[];
  /** References that cannot be pinned in place, with why (e.g. a Helm image without `tag:`). */
  skipped: { pin: PinnedReference; reason: string }[];
}

/** The pinned form of every reference of every image with a digest in `digests` (image name -> manifest digest). */
export function pinReferences(images: StackImage[], digests: Record<string, string> | Map<string, string>): PinnedReference[] {
  const get = (name: string): string | undefined => (digests instanceof Map ? digests.get(name) : digests[name]);
  const out: PinnedReference[] = [];
  for (const image of images) {
    const digest = get(image.name);
    if (digest === undefined) continue;
    if (!isDigest(digest)) {
      throw new OcistackError(`digest "${digest}" of ${image.name} is not a sha256 digest`, { code: 'BAD_DIGEST', hint: 'pass the manifest digest the push returned' });
    }
    for (const reference of image.usedBy) {
      // The owner is written lowercase: the one form Kubernetes accepts.
      const tag = reference.tag !== undefined ? `:${reference.tag}` : '';
      out.push({ reference, image: image.name, digest, pinned: `${reference.registry}/${STACK_OWNER}/${image.name}${tag}@${digest}` });
    }
  }
  return out;
}

interface Edit {
  start: number;
  end: number;
  text: string;
  pin: PinnedReference;
}

function editOf(pin: PinnedReference): Edit | string {
  const src = pin.reference.source;
  if (!src) return 'the reference carries no scan position (it did not come from discoverStack/scanReferences)';
  const e = src.edit;
  switch (e.kind) {
    case 'reference':
      return { start: e.span.start, end: e.span.end, text: pin.pinned, pin };
    case 'tag':
      return { start: e.span.start, end: e.span.end, text: `${e.tag}@${pin.digest}`, pin };
    case 'digest':
      return { start: e.span.start, end: e.span.end, text: pin.digest, pin };
    case 'insert-digest':
      return { start: e.at, end: e.at, text: `\n${e.indent}digest: ${pin.digest}`, pin };
    case 'none':
      return e.reason;
  }
}

function stale(file: string, why: string): OcistackError {
  return new OcistackError(`${displayPath(file)} changed since the stack was scanned (${why}); nothing was written`, {
    code: 'STACK_PIN_STALE',
    location: { file: displayPath(file), line: 1 },
    hint: 'run the command again: it scans the files anew',
  });
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Write the pins into their files. Every file is checked first; then each is replaced atomically. */
export async function writePins(pins: PinnedReference[]): Promise<WritePinsResult> {
  const skipped: WritePinsResult['skipped'] = [];
  const byFile = new Map<string, Edit[]>();
  for (const pin of pins) {
    const edit = editOf(pin);
    if (typeof edit === 'string') {
      skipped.push({ pin, reason: edit });
      continue;
    }
    const list = byFile.get(pin.reference.location.file) ?? [];
    // The same place named twice (one reference in two pin lists) is written once.
    if (!list.some((o) => o.start === edit.start && o.end === edit.end)) list.push(edit);
    byFile.set(pin.reference.location.file, list);
  }
  const planned: { file: string; before: string; after: string; edits: Edit[] }[] = [];
  for (const [file, edits] of byFile) {
    const before = await readFile(file, 'utf8');
    const fileSha = edits[0]!.pin.reference.source!.fileSha256;
    if (edits.some((e) => e.pin.reference.source!.fileSha256 !== fileSha)) throw stale(file, 'its references come from different scans');
    if (sha(before) !== fileSha) throw stale(file, 'its content differs');
    edits.sort((a, b) => a.start - b.start);
    for (let i = 1; i < edits.length; i++) {
      if (edits[i]!.start < edits[i - 1]!.end) throw stale(file, 'two references overlap');
    }
    let after = '';
    let pos = 0;
    for (const e of edits) {
      const src = e.pin.reference.source!;
      if (before.slice(src.span.start, src.span.end) !== e.pin.reference.text) throw stale(file, `"${e.pin.reference.text}" is not where it was`);
      after += before.slice(pos, e.start) + e.text;
      pos = e.end;
    }
    after += before.slice(pos);
    planned.push({ file, before, after, edits });
  }
  const files: string[] = [];
  const written: PinnedReference[] = [];
  for (const p of planned) {
    if (p.after !== p.before) {
      await replaceFile(p.file, p.after, sha(p.before));
      files.push(p.file);
    }
    written.push(...p.edits.map((e) => e.pin));
  }
  return { files, written, skipped };
}

/** Write `text` to a temporary file beside `file` (same mode), check `file` is still as read, rename over it. */
async function replaceFile(file: string, text: string, expectedSha: string): Promise<void> {
  const mode = (await stat(file)).mode & 0o7777;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.ocistack-${process.pid}-${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, text, { mode, flag: 'wx' });
  await chmod(tmp, mode); // writeFile's mode passes through the umask
  try {
    if (sha(await readFile(file, 'utf8')) !== expectedSha) throw stale(file, 'it was changed while the pins were written');
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
