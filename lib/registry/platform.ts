/**
 * Platforms (`os/arch[/variant]`) and choosing one manifest from an index.
 */
import { OcistackError } from '../errors.js';
import type { Descriptor, Platform } from '../image/types.js';

const NODE_ARCH: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64', variant: 'v8' },
  arm: { architecture: 'arm', variant: 'v7' },
  ia32: { architecture: '386' },
  ppc64: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
};

/** This machine's linux platform, e.g. `{ os: 'linux', architecture: 'amd64' }`. */
export function hostPlatform(): Platform {
  const a = NODE_ARCH[process.arch] ?? { architecture: process.arch };
  return { os: 'linux', architecture: a.architecture, ...(a.variant ? { variant: a.variant } : {}) };
}

/** Parse `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !p)) {
    throw new OcistackError(`invalid platform "${s}"`, { code: 'BAD_PLATFORM', hint: 'write os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8', exitCode: 2 });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return { os: os.toLowerCase(), architecture: architecture.toLowerCase(), ...(variant ? { variant: variant.toLowerCase() } : {}) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function normVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && (!p.variant || p.variant === 'v8')) return 'v8';
  return p.variant;
}

/** Whether an image platform satisfies the wanted one (variant only compared when wanted). */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant && normVariant(have) !== normVariant(want)) return false;
  return true;
}

/** The index entry for `want`: exact variant first, then any variant. */
export function selectManifest(manifests: Descriptor[], want: Platform, where: string): Descriptor {
  const candidates = manifests.filter((m) => platformMatches(m.platform, want));
  const exact = candidates.find((m) => normVariant(m.platform!) === normVariant(want));
  const chosen = exact ?? candidates[0];
  if (!chosen) {
    const have = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ');
    throw new OcistackError(`${where} has no image for ${formatPlatform(want)} (it has: ${have || 'none'})`, {
      code: 'NO_MATCHING_PLATFORM',
      hint: 'pass --platform with one of the listed platforms',
    });
  }
  return chosen;
}
