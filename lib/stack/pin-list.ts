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
