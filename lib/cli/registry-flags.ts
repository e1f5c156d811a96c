/**
 * Registry flags shared by build, push, copy, pull and login:
 * `--insecure`, `--plain-http`, `--tls-verify`, `--ca-file`, `--cert-dir`,
 * `--creds`, `--chunk-size`, `--timeout`.
 * `--insecure`, `--plain-http` and `--tls-verify=false` apply to the
 * registries of the command's targets only (the destination of a push or
 * copy, the image pulled, the tags of a build); `--creds` to the target
 * registry only. A base image's registry gets none of them.
 * OCISTACK_USERNAME/PASSWORD have the same scope as `--creds`.
 */
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { parseReference } from '../registry/reference.js';
import type { Credentials, RegistryOptions } from '../registry/types.js';
import { flagBool, flagString, type FlagSpec, type ParsedArgs } from './args.js';
import type { CliIO } from './types.js';

export const registryFlagSpecs: FlagSpec[] = [
  { name: 'insecure', type: 'boolean' },
  { name: 'plain-http', type: 'boolean' },
  { name: 'tls-verify', type: 'boolean' },
  { name: 'timeout', type: 'string' },
  { name: 'ca-file', type: 'string' },
  { name: 'cert-dir', type: 'string' },
  { name: 'creds', type: 'string' },
  { name: 'chunk-size', type: 'string' },
];

/** Help lines for the flags above, for commands' `--help`. */
export const registryFlagsHelp = `      --insecure             skip TLS verification for the registries named on the command line only
      --plain-http           talk plain HTTP (no TLS) to the registries named on the command line
      --tls-verify=false     as skopeo: for those registries skip TLS verification, and use plain HTTP
                             when HTTPS fails before any answer (--insecure plus a fallback)
      --timeout DURATION     time limit for connecting, the TLS handshake and any silence while a
                             request waits, uploads or downloads (e.g. 30s, 2m; default: connect 30s,
                             TLS handshake 10s, silence 30s); then retries, then an error
      --ca-file FILE         trust the CA certificates in this PEM file (in addition to the system's)
      --cert-dir DIR         certs.d-style directory: DIR/HOST:PORT/ca.crt (and client *.cert/*.key)
      --creds USER[:PASS]    credentials for the target registry only (the -t tags, push/copy destination, pulled image);
                             PASS is read from stdin when missing
      --chunk-size SIZE      upload blobs larger than SIZE in chunks of SIZE (default 32m; 413 answers halve it)`;

/** Parse `4m`, `64MiB`, `1g`, `1048576`. */
export function parseSize(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`--${flag} "${s}" is not a size`, `write e.g. --${flag} 8m (k, m, g are powers of 1024)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Math.floor(Number(m[1]) * mult);
  if (n < 1024 * 1024) throw new UsageError(`--${flag} ${s} is too small`, `use at least 1m`);
  return n;
}

/** Parse `300ms`, `30s`, `2m`, `1h`, `1m30s` or a bare number of seconds into ms. */
export function parseDuration(s: string, flag: string): number {
  const text = s.trim();
  const usage = () => new UsageError(`--${flag} "${s}" is not a duration`, `write e.g. --${flag} 30s (units ms, s, m, h; a bare number is seconds)`);
  let ms: number;
  if (/^\d+(?:\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else {
    const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
    ms = 0;
    let end = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      ms += Number(m[1]) * unit[m[2] as keyof typeof unit];
      end = re.lastIndex;
    }
    if (end === 0 || end !== text.length) throw usage();
  }
  if (!(ms >= 1)) throw new UsageError(`--${flag} ${s} is too short`, `use at least 1ms, e.g. --${flag} 30s`);
  return Math.round(ms);
}

/** Registry host of a command-line target (`docker://REF`, a bare REF); undefined for oci:/docker-archive: targets. */
export function targetRegistry(target: string): string | undefined {
  if (/^(oci|oci-archive|docker-archive|dir):/.test(target)) return undefined;
  const ref = target.startsWith('docker://') ? target.slice('docker://'.length) : target;
  try {
    return parseReference(ref).registry;
  } catch {
    return undefined;
  }
}

async function readFirstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let data = '';
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    data += chunk.toString();
    if (data.includes('\n')) break;
  }
  return data.split(/\r?\n/)[0] ?? '';
}

/** `USER:PASS`, or `USER` with the password read from stdin. */
export async function parseCreds(spec: string, io: CliIO): Promise<Credentials> {
  const c = spec.indexOf(':');
  if (c === 0) throw new UsageError('--creds has an empty user name', 'write --creds USER:PASSWORD or --creds USER (password on stdin)');
  if (c > 0) return { username: spec.slice(0, c), password: spec.slice(c + 1) };
  const password = await readFirstLine(io.stdin);
  if (!password) throw new UsageError(`--creds ${spec} has no password and stdin gave none`, 'write --creds USER:PASSWORD, or pipe the password on stdin');
  return { username: spec, password };
}

/**
 * RegistryOptions from the parsed flags. `targets` are the command's
 * references that get `--insecure`; `credsHosts` (default: the targets'
 * registries) the hosts that get `--creds` and OCISTACK_USERNAME/PASSWORD.
 */
export async function registryOptionsFromFlags(parsed: ParsedArgs, ctx: { targets: string[]; credsHosts?: string[]; io: CliIO }): Promise<RegistryOptions> {
  const hosts = [...new Set(ctx.targets.map(targetRegistry).filter((h): h is string => !!h))];
  const opts: RegistryOptions = { env: ctx.io.env };
  if (ctx.io.signal) opts.signal = ctx.io.signal;
  if (flagBool(parsed, 'insecure')) {
    if (!hosts.length) throw new UsageError('--insecure needs a registry destination to apply to', 'name the registry image (e.g. -t host:port/owner/image:tag), or drop --insecure');
    opts.insecureRegistries = hosts;
  }
  if (flagBool(parsed, 'plain-http')) {
    if (!hosts.length) throw new UsageError('--plain-http needs a registry destination to apply to', 'name the registry image (e.g. -t host:port/owner/image:tag), or drop --plain-http');
    opts.plainHttpRegistries = hosts;
  }
  if (parsed.flags.get('tls-verify') === false) {
    if (!hosts.length) throw new UsageError('--tls-verify=false needs a registry destination to apply to', 'name the registry image (e.g. -t host:port/owner/image:tag), or drop --tls-verify=false');
    // skopeo: no verification, and plain HTTP when HTTPS fails (containers/image's ping fallback).
    opts.insecureRegistries = [...new Set([...(opts.insecureRegistries ?? []), ...hosts])];
    opts.httpFallbackRegistries = hosts;
  }
  const timeout = flagString(parsed, 'timeout');
  if (timeout !== undefined) {
    const ms = parseDuration(timeout, 'timeout');
    opts.timeouts = { connectMs: ms, tlsMs: ms, idleMs: ms };
  }
  const caFile = flagString(parsed, 'ca-file');
  if (caFile) opts.caFile = path.resolve(ctx.io.cwd, caFile);
  const certDir = flagString(parsed, 'cert-dir');
  if (certDir) opts.certDir = path.resolve(ctx.io.cwd, certDir);
  const creds = flagString(parsed, 'creds');
  if (creds !== undefined) opts.credentials = await parseCreds(creds, ctx.io);
  // Always set, also to []: --creds and OCISTACK_USERNAME/PASSWORD go to these hosts and no others.
  opts.credentialsFor = ctx.credsHosts ?? hosts;
  const chunk = flagString(parsed, 'chunk-size');
  if (chunk) opts.chunkSize = parseSize(chunk, 'chunk-size');
  return opts;
}
