/**
 * Choosing one manifest of an index for a platform. Parsing and naming
 * platforms is lib/image/platform.ts's job; this adds the selection rule.
 */
import { OcistackError } from '../errors.js';
import { formatPlatform, normalizePlatform } from '../image/platform.js';
import type { Descriptor, Platform } from '../image/types.js';

export { formatPlatform, hostPlatform, parsePlatform } from '../image/platform.js';

/**
 * The index entry for `want`: same os and architecture, the same variant
 * (after Go's normalisation: arm64 is v8, arm is v7) preferred, else the
 * first entry with any variant when `want` names none explicitly.
 */
export function selectManifest(manifests: Descriptor[], want: Platform, where: string, wantVariantExplicit = !!want.variant): Descriptor {
  const w = normalizePlatform(want);
  const candidates = manifests.filter((m) => {
    if (!m.platform) return false;
    const h = normalizePlatform(m.platform);
    return h.os === w.os && h.architecture === w.architecture;
  });
  const exact = candidates.find((m) => (normalizePlatform(m.platform!).variant ?? '') === (w.variant ?? ''));
  const chosen = exact ?? (wantVariantExplicit ? undefined : candidates[0]);
  if (!chosen) {
    const have = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ');
    throw new OcistackError(`${where} has no image for ${formatPlatform(w)} (it has: ${have || 'none'})`, {
      code: 'NO_MATCHING_PLATFORM',
      hint: 'pass --platform with one of the listed platforms',
    });
  }
  return chosen;
}
