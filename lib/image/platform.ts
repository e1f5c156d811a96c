/**
 * Platforms as `os/arch[/variant]` strings and OCI Platform objects.
 * The default is the machine's own Linux platform, mapped from Node's names
 * to Go's (x64 -> amd64), because images are named in Go's terms.
 */
import { OcistackError } from '../errors.js';
import type { Platform } from './types.js';

const NODE_TO_GO_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

export function hostPlatform(): Platform {
  const architecture = NODE_TO_GO_ARCH[process.arch] ?? process.arch;
  const p: Platform = { os: 'linux', architecture };
  if (architecture === 'arm64') p.variant = 'v8';
  return p;
}

/** Parse `linux/arm64/v8`, `linux/amd64`, `amd64` (os defaults to linux). */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length === 1 && parts[0]) return normalizePlatform({ os: 'linux', architecture: parts[0] });
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !p)) {
    throw new OcistackError(`invalid platform "${s}"`, {
      code: 'BAD_PLATFORM',
      exitCode: 2,
      hint: 'write a platform as os/arch[/variant], for example linux/amd64 or linux/arm64/v8',
    });
  }
  return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] });
}

/** Architecture aliases (uname and Debian names) and the variant they imply. */
const ARCH_ALIASES: Record<string, [string, string?]> = {
  x86_64: ['amd64'], 'x86-64': ['amd64'], aarch64: ['arm64'], i386: ['386'], armhf: ['arm', 'v7'], armel: ['arm', 'v6'],
};

/** Go's normalisation: arm64 implies v8, arm implies v7, aliases mapped (aarch64 is arm64, x86_64 is amd64). */
export function normalizePlatform(p: Platform): Platform {
  const alias = ARCH_ALIASES[p.architecture];
  const architecture = alias ? alias[0] : p.architecture;
  let variant = p.variant ?? alias?.[1];
  if (architecture === 'arm64' && !variant) variant = 'v8';
  if (architecture === 'arm' && !variant) variant = 'v7';
  const out: Platform = { os: p.os, architecture };
  if (variant) out.variant = variant;
  return out;
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Does a descriptor's platform satisfy the wanted one (variant optional on the descriptor for arm64)? */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  const h = normalizePlatform(have);
  const w = normalizePlatform(want);
  return h.os === w.os && h.architecture === w.architecture && (h.variant ?? '') === (w.variant ?? '');
}
