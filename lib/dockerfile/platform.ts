/**
 * The automatic platform ARGs BuildKit defines in the global scope:
 * BUILDPLATFORM/BUILDOS/BUILDARCH/BUILDVARIANT for the machine building and
 * TARGETPLATFORM/TARGETOS/TARGETARCH/TARGETVARIANT for the image built.
 */

export interface PlatformParts {
  os: string;
  architecture: string;
  variant?: string;
}

/** This machine as an OCI platform (`linux/amd64`, `linux/arm64`, `linux/arm/v7`...). */
export function hostPlatform(): PlatformParts {
  const archMap: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', mips64el: 'mips64le', loong64: 'loong64' };
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const architecture = archMap[process.arch] ?? process.arch;
  const p: PlatformParts = { os, architecture };
  if (architecture === 'arm') p.variant = 'v7';
  return p;
}

/** Parses `os/arch[/variant]` (os defaults to linux when only an arch is given). */
export function parsePlatformString(s: string): PlatformParts {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length === 1) return normalize({ os: 'linux', architecture: parts[0]! });
  const p: PlatformParts = { os: parts[0]!, architecture: parts[1] ?? '' };
  if (parts[2]) p.variant = parts[2];
  return normalize(p);
}

function normalize(p: PlatformParts): PlatformParts {
  const aliases: Record<string, [string, string?]> = {
    x86_64: ['amd64'], 'x86-64': ['amd64'], aarch64: ['arm64'], i386: ['386'], armhf: ['arm', 'v7'], armel: ['arm', 'v6'],
  };
  const a = aliases[p.architecture];
  const out: PlatformParts = { os: p.os, architecture: a ? a[0] : p.architecture };
  const variant = p.variant ?? a?.[1];
  if (out.architecture === 'arm64' && variant === 'v8') return out;
  if (variant) out.variant = variant;
  else if (out.architecture === 'arm') out.variant = 'v7';
  return out;
}

export function formatPlatformParts(p: PlatformParts): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

/** The automatic platform ARGs for a target platform (default: this machine). */
export function platformArgs(target?: string, build?: string): Record<string, string> {
  const t = target ? parsePlatformString(target) : hostPlatform();
  const b = build ? parsePlatformString(build) : hostPlatform();
  return {
    BUILDPLATFORM: formatPlatformParts(b),
    BUILDOS: b.os,
    BUILDARCH: b.architecture,
    BUILDVARIANT: b.variant ?? '',
    TARGETPLATFORM: formatPlatformParts(t),
    TARGETOS: t.os,
    TARGETARCH: t.architecture,
    TARGETVARIANT: t.variant ?? '',
  };
}

/** ARGs Docker predefines: usable without an ARG line, and kept out of history. */
export const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];
