/**
 * The automatic platform ARGs BuildKit defines in the global scope:
 * BUILDPLATFORM/BUILDOS/BUILDARCH/BUILDVARIANT for the machine building and
 * TARGETPLATFORM/TARGETOS/TARGETARCH/TARGETVARIANT for the image built.
 */

import { hostPlatform as imageHostPlatform, parsePlatform } from '../image/platform.js';
import type { Platform } from '../image/types.js';

export interface PlatformParts {
  os: string;
  architecture: string;
  variant?: string;
}

/**
 * BuildKit's ARG form of a platform: as lib/image/platform parses it, but an
 * arm64 `v8` variant is implied, not shown (TARGETPLATFORM=linux/arm64,
 * TARGETVARIANT empty), as containerd's normalisation does.
 */
function argForm(p: Platform): PlatformParts {
  const out: PlatformParts = { os: p.os, architecture: p.architecture };
  if (p.variant && !(p.architecture === 'arm64' && p.variant === 'v8')) out.variant = p.variant;
  return out;
}

/** This machine as an OCI platform, in ARG form. */
export function hostPlatform(): PlatformParts {
  return argForm(imageHostPlatform());
}

/** Parses `os/arch[/variant]` (os defaults to linux when only an arch is given). */
export function parsePlatformString(s: string): PlatformParts {
  return argForm(parsePlatform(s));
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
