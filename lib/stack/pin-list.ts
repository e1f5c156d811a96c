/**
 * `--pin`: the digest-pinned form of every manifest reference to an image the
 * batch pushed. What is written back into the files is pin.ts's job; this
 * only says which text becomes which.
 */
import type { StackPin } from './providers.js';
import type { StackResult } from './types.js';

/**
 * For each pushed image, each reference that uses it becomes
 * `registry/repository:tag@digest`: the reference's own tag when it was
 * pushed, else the first tag pushed (the digest is what the kubelet pulls;
 * the tag only tells a reader which one it was).
 */
export function digestPins(result: StackResult): StackPin[] {
  const pins: StackPin[] = [];
  for (const r of result.images) {
    if (r.status !== 'pushed' || !r.manifestDigest) continue;
    const pushedTags = r.references.map((ref) => ref.slice(ref.lastIndexOf(':') + 1));
    for (const reference of r.image.usedBy) {
      const tag = reference.tag !== undefined && pushedTags.includes(reference.tag) ? reference.tag : pushedTags[0];
      const pinned = `${reference.registry}/${reference.repository}${tag ? `:${tag}` : ''}@${r.manifestDigest}`;
      if (pinned !== reference.text) pins.push({ reference, pinned });
    }
  }
  return pins;
}

/** A pin that `--pin --write` cannot put into its file, and why (lib/stack/references.ts says). */
export interface UnpinnableReference {
  pin: StackPin;
  reason: string;
}

/**
 * Split pins into those `--pin --write` can write and those it cannot (a
 * Helm image without a plain `tag:`, a flow-style kustomize entry, a
 * reference written with escapes...): the scanner marks those with an edit
 * of kind `none` and its reason. Pins without a scan position (a model made
 * by hand) are left to the writer.
 */
export function splitPins(pins: StackPin[]): { writable: StackPin[]; unpinnable: UnpinnableReference[] } {
  const writable: StackPin[] = [];
  const unpinnable: UnpinnableReference[] = [];
  for (const pin of pins) {
    const edit = pin.reference.source?.edit;
    if (edit?.kind === 'none') unpinnable.push({ pin, reason: edit.reason });
    else writable.push(pin);
  }
  return { writable, unpinnable };
}
