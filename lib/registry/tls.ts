/**
 * TLS policy per registry host. Every registry gets its own `https.Agent`
 * (keep-alive, its own trust roots, its own verification switch), so
 * `--insecure` for one registry never weakens another, and nothing touches
 * `NODE_TLS_REJECT_UNAUTHORIZED` or global agents.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { OcistackError } from '../errors.js';
import { hostnameOf } from './reference.js';
import type { RegistryOptions } from './types.js';

/** certs.d directories searched after `--cert-dir`, in this order. */
export function defaultCertDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || os.homedir();
  const xdg = env.XDG_CONFIG_HOME || path.join(home, '.config');
  return [path.join(xdg, 'ocistack', 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'];
}

/** Whether `registry` (host or host:port) matches an entry of a host list (`host` alone matches every port). */
export function hostListed(list: string[] | undefined, registry: string): boolean {
  if (!list?.length) return false;
  const host = hostnameOf(registry);
  return list.some((e) => e === registry || e === host || e === '*');
}

export interface TlsPolicy {
  /** Skip certificate verification (this host only). */
  insecure: boolean;
  /** Extra CA PEMs in addition to the system roots. */
  ca: string[];
  /** Files the CAs came from (for messages). */
  caSources: string[];
  /** Client certificate pair from certs.d (`*.cert` + `*.key`). */
  cert?: string;
  key?: string;
}

function readCertsDir(dir: string, policy: TlsPolicy): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const n of names) {
    const p = path.join(dir, n);
    if (n.endsWith('.crt')) {
      policy.ca.push(fs.readFileSync(p, 'utf8'));
      policy.caSources.push(p);
    } else if (n.endsWith('.cert')) {
      const keyPath = path.join(dir, n.slice(0, -'.cert'.length) + '.key');
      if (fs.existsSync(keyPath) && !policy.cert) {
        policy.cert = fs.readFileSync(p, 'utf8');
        policy.key = fs.readFileSync(keyPath, 'utf8');
      }
    }
  }
}

/** Work out the TLS policy for one registry host from the options. */
export function tlsPolicyFor(registry: string, opts: RegistryOptions = {}): TlsPolicy {
  const policy: TlsPolicy = { insecure: hostListed(opts.insecureRegistries, registry), ca: [], caSources: [] };
  if (opts.caFile) {
    try {
      policy.ca.push(fs.readFileSync(opts.caFile, 'utf8'));
      policy.caSources.push(opts.caFile);
    } catch (e) {
      throw new OcistackError(`cannot read CA file ${opts.caFile}: ${(e as Error).message}`, {
        code: 'TLS',
        registry,
        hint: 'pass --ca-file with the path of a PEM certificate bundle',
        exitCode: 2,
      });
    }
  }
  // A Set: a certDir that is also a default one (the stack's kept Gitea
  // certificate) is read once, not trusted twice.
  const dirs = [...new Set([...(opts.certDir ? [path.resolve(opts.certDir)] : []), ...defaultCertDirs(opts.env).map((d) => path.resolve(d))])];
  for (const d of dirs) {
    // certs.d is keyed by host:port, and by bare host for port 443.
    readCertsDir(path.join(d, registry), policy);
    if (!registry.includes(':')) readCertsDir(path.join(d, `${registry}:443`), policy);
  }
  return policy;
}

/**
 * A secure context trusting the system roots plus `p.ca`. Handing Node
 * `[...tls.rootCertificates, ...ca]` makes it parse ~140 root PEMs again
 * (~25 ms of every run with --ca-file); adding the extra CAs to a default
 * context reuses the roots Node parsed once (its SecureContext `addCACert`,
 * what `createSecureContext({ ca })` calls itself), with the documented path
 * as fallback should that handle ever be missing.
 */
function secureContextWith(p: TlsPolicy): tls.SecureContext {
  if (p.ca.length) {
    const ctx = tls.createSecureContext({ cert: p.cert, key: p.key });
    const native = (ctx as unknown as { context?: { addCACert?: (pem: string) => void } }).context;
    if (typeof native?.addCACert === 'function') {
      try {
        for (const pem of p.ca) native.addCACert(pem);
        return ctx;
      } catch {
        /* fall through: the documented path reports a bad PEM its own way */
      }
    }
  }
  return tls.createSecureContext({ ca: p.ca.length ? [...tls.rootCertificates, ...p.ca] : undefined, cert: p.cert, key: p.key });
}

/** An agent carrying the policy, with keep-alive. */
export function agentFor(registry: string, opts: RegistryOptions = {}, plainHttp = false): http.Agent {
  if (plainHttp) return new http.Agent({ keepAlive: true, maxSockets: 16 });
  const p = tlsPolicyFor(registry, opts);
  // One secure context per agent: passing `ca` alone makes Node parse every
  // root certificate again on each new connection.
  const secureContext = secureContextWith(p);
  return new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: !p.insecure, secureContext });
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

const TLS_REASONS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'its certificate chain ends in a self-signed CA that is not trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its certificate is signed by an unknown CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its certificate is signed by an unknown CA',
  CERT_HAS_EXPIRED: 'its certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its certificate is not valid for this host name',
};

/** The error code of a network error (Node's own, or one wrapping it as `cause`). */
export function errorCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur && typeof cur === 'object'; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string' && c !== 'FETCH_ERROR' && c !== 'system') return c;
    cur = (cur as { cause?: unknown }).cause ?? (cur as { erroredSysCall?: unknown; reason?: unknown }).reason;
  }
  return undefined;
}

/** Whether a network error is a TLS verification failure (never retried). */
export function isTlsError(e: unknown): boolean {
  const c = errorCode(e);
  if (c && TLS_CODES.has(c)) return true;
  const msg = String((e as Error)?.message ?? '');
  return /certificate|self[- ]signed|SSL routines/i.test(msg);
}

/**
 * Whether a TLS connection failed because the server answered with plain
 * text: OpenSSL reads the first bytes of "HTTP/1.1 400 ..." as a TLS record
 * header and reports "wrong version number" (OpenSSL 1.1/3, Node's EPROTO)
 * or "packet length too long" (an older record parser).
 */
export function isPlainHttpAnswer(e: unknown): boolean {
  const c = errorCode(e);
  if (c === 'ERR_SSL_WRONG_VERSION_NUMBER' || c === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return true;
  return /wrong version number|packet length too long/i.test(String((e as Error)?.message ?? ''));
}

/** Turn a TLS failure into an error that names the host, the reason, and both fixes. */
export function tlsError(registry: string, e: unknown, opts: RegistryOptions = {}): OcistackError {
  if (isPlainHttpAnswer(e)) {
    return new OcistackError(`TLS connection to ${registry} failed: the server answered plain HTTP`, {
      code: 'PLAIN_HTTP',
      registry,
      hint:
        `if ${registry} is a plain-HTTP registry, pass --plain-http (API: registry.plainHttpRegistries: ["${registry}"]); ` +
        `--tls-verify=false tries HTTPS without verification first, then plain HTTP`,
      cause: e,
    });
  }
  const code = errorCode(e) ?? '';
  const why = TLS_REASONS[code] ?? String((e as Error)?.message ?? e);
  const certDir = opts.certDir ?? defaultCertDirs(opts.env)[0]!;
  return new OcistackError(`TLS verification of ${registry} failed: ${why}${code ? ` (${code})` : ''}`, {
    code: 'TLS',
    registry,
    hint:
      `trust the registry's CA with --ca-file CA.pem (or put it in ${path.join(certDir, registry, 'ca.crt')}), ` +
      `or skip verification for this registry only with --insecure`,
    cause: e,
  });
}
