/**
 * Registry flags shared by build, push, copy, pull and login:
 * `--insecure`, `--ca-file`, `--cert-dir`, `--creds`, `--chunk-size`.
 * `--insecure` and `--creds` apply to the registries of the command's
 * targets only (the destination of a push or copy, the image pulled, the
 * tags of a build), never to every registry the command talks to: a base
 * image's registry gets neither. OCISTACK_USERNAME/PASSWORD have the same
 * scope as `--creds`.
 */
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { parseReference } from '../registry/reference.js';
import type { Credentials, RegistryOptions } from '../registry/types.js';
import { flagBool, flagString, type FlagSpec, type ParsedArgs } from './args.js';
import type { CliIO } from './types.js';

export const registryFlagSpecs: FlagSpec[] = [
  { name: 'insecure', type: 'boolean' },
  { name: 'ca-file', type: 'string' },
  { name: 'cert-dir', type: 'string' },
  { name: 'creds', type: 'string' },
  { name: 'chunk-size', type: 'string' },
];

/** Help lines for the flags above, for commands' `--help`. */
export const registryFlagsHelp = `      --insecure             skip TLS verification for the registries named on the command line only
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
