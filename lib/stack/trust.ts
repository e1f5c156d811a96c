/**
 * Trusting the stack's Gitea, the first that works:
 *
 *  1. `--insecure` (skip verification for the Gitea host), `--ca-file`, or a
 *     `--cert-dir` that has an entry for the host;
 *  2. the certificate kept from an earlier run,
 *     `${XDG_CONFIG_HOME:-~/.config}/ocistack/certs.d/<host:port>/ca.crt`
 *     (the first certs.d directory lib/registry/tls.ts reads), if it still
 *     verifies the registry;
 *  3. idpbuilder's certificate from the cluster: Secret
 *     `ingress-nginx/idpbuilder-cert` (`tls.crt`, what the ingress serves),
 *     else Secret `default/idpbuilder-cert` (`ca.crt`; cnoe-io/idpbuilder
 *     pkg/build/tls.go), read with kubectl and written to the place of 2;
 *  4. nothing: verification skipped for the Gitea host only, with a warning.
 *
 * A kept certificate that no longer verifies means the cluster was
 * recreated (idpbuilder makes a new self-signed certificate each time): it
 * is replaced from the cluster. "Verifies" is a TLS handshake with only
 * that certificate as trust root; when nothing answers, the certificate is
 * kept or taken unchecked (the push will say the registry is down).
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { abortError } from '../abort.js';
import { hostnameOf } from '../registry/reference.js';
import { defaultCertDirs, isPlainHttpAnswer, isTlsError } from '../registry/tls.js';
import type { RegistryOptions } from '../registry/types.js';
import { runClusterCommand } from './cluster-command.js';

/** idpbuilder's certificate secrets, in the order they are asked for. */
export const IDPBUILDER_CERT_SECRETS = [
  { namespace: 'ingress-nginx', name: 'idpbuilder-cert', key: 'tls.crt' },
  { namespace: 'default', name: 'idpbuilder-cert', key: 'ca.crt' },
] as const;

export interface ResolveGiteaTrustOptions {
  /** `gitea.cnoe.localtest.me:8443`. */
  registry: string;
  /** `http`: plain HTTP, nothing to trust. Default `https`. */
  protocol?: 'https' | 'http';
  caFile?: string;
  certDir?: string;
  insecure?: boolean;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  kubectl?: string;
  /** Check certificates against the live registry (default true). */
  probe?: boolean;
}

export interface GiteaTrust {
  /** `caFile` / `certDir` / `insecureRegistries` / `plainHttpRegistries`, for the Gitea host only where the option is per host. */
  registry: Pick<RegistryOptions, 'caFile' | 'certDir' | 'insecureRegistries' | 'plainHttpRegistries'>;
  /** e.g. `--ca-file`, `cached /home/u/.config/ocistack/certs.d/.../ca.crt`, `kubectl secret ingress-nginx/idpbuilder-cert`, `verification skipped`. */
  source: string;
  warnings: string[];
}

/** `${XDG_CONFIG_HOME:-~/.config}/ocistack/certs.d`: where cluster certificates are kept. */
export function giteaCertsRoot(env: NodeJS.ProcessEnv): string {
  return defaultCertDirs(env)[0]!;
}

/** The kept certificate of one registry. */
export function cachedCertPath(registry: string, env: NodeJS.ProcessEnv): string {
  return path.join(giteaCertsRoot(env), registry, 'ca.crt');
}

/** The PEM if `text` holds a parseable X.509 certificate, else undefined. */
function validPem(text: string | undefined): string | undefined {
  if (!text || !text.includes('-----BEGIN CERTIFICATE-----')) return undefined;
  try {
    new X509Certificate(text);
    return text.endsWith('\n') ? text : `${text}\n`;
  } catch {
    return undefined;
  }
}

export type ProbeResult = 'trusted' | 'untrusted' | 'unreachable';

/**
 * One TLS handshake with `registry` trusting only `pem`: does that
 * certificate verify it (chain and host name)? Connection failures, a
 * plain-HTTP answer and timeouts are `unreachable`: they say nothing about
 * the certificate.
 */
export function probeCertificate(registry: string, pem: string, signal?: AbortSignal, timeoutMs = 5000): Promise<ProbeResult> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const host = hostnameOf(registry);
  const port = Number(registry.slice(host.length + 1)) || 443;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (r: ProbeResult | Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const socket = tls.connect({ host, port, servername: host, ca: [pem], ALPNProtocols: ['http/1.1'] }, () => finish('trusted'));
    socket.on('error', (e) => finish(isTlsError(e) && !isPlainHttpAnswer(e) ? 'untrusted' : 'unreachable'));
    const timer = setTimeout(() => finish('unreachable'), timeoutMs);
    const onAbort = () => finish(abortError(signal));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Write `pem` to `file` so that no reader sees half a file (temp file + rename). */
async function writeAtomic(file: string, pem: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await fsp.writeFile(tmp, pem, { mode: 0o644 });
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/** Does a certs.d-style directory have a certificate for this registry? */
function certDirHas(dir: string, registry: string): boolean {
  try {
    return fs.readdirSync(path.join(dir, registry)).some((n) => n.endsWith('.crt'));
  } catch {
    return false;
  }
}

/** Work out how to trust the stack's Gitea (see the module comment for the order). */
export async function resolveGiteaTrust(opts: ResolveGiteaTrustOptions): Promise<GiteaTrust> {
  const { registry, env } = opts;
  const passDir = opts.certDir ? { certDir: opts.certDir } : {};
  if (opts.protocol === 'http') return { registry: { plainHttpRegistries: [registry] }, source: 'plain HTTP (idpbuilder --protocol http)', warnings: [] };
  if (opts.insecure) return { registry: { ...passDir, insecureRegistries: [registry] }, source: '--insecure', warnings: [] };
  if (opts.caFile) return { registry: { ...passDir, caFile: opts.caFile }, source: '--ca-file', warnings: [] };
  if (opts.certDir && certDirHas(opts.certDir, registry)) return { registry: passDir, source: `--cert-dir ${path.join(opts.certDir, registry)}`, warnings: [] };

  const probe = opts.probe ?? true;
  const root = giteaCertsRoot(env);
  const cached = cachedCertPath(registry, env);
  // The kept file is in a directory lib/registry/tls.ts reads for this host
  // anyway; naming it as certDir too keeps it so when the caller's env differs.
  const useCache = { registry: { certDir: opts.certDir ?? root }, warnings: [] };
  let stale: string | undefined;
  const keptPem = validPem(await fsp.readFile(cached, 'utf8').catch(() => undefined));
  if (keptPem) {
    const r = probe ? await probeCertificate(registry, keptPem, opts.signal) : 'trusted';
    if (r !== 'untrusted') return { ...useCache, source: `cached ${cached}` };
    stale = keptPem;
  }

  const why: string[] = [];
  for (const s of IDPBUILDER_CERT_SECRETS) {
    const where = `${s.namespace}/${s.name}`;
    const res = await runClusterCommand(opts.kubectl ?? 'kubectl', ['get', 'secret', '-n', s.namespace, s.name, '-o', 'json', '--request-timeout=10s'], { env, signal: opts.signal });
    if (res.status === 'missing') {
      why.push('kubectl is not installed');
      break;
    }
    if (res.status === 'failed') {
      why.push(`kubectl secret ${where}: ${res.reason}`);
      continue;
    }
    let pem: string | undefined;
    try {
      const data = (JSON.parse(res.stdout) as { data?: Record<string, unknown> }).data ?? {};
      const b64 = data[s.key];
      pem = validPem(typeof b64 === 'string' ? Buffer.from(b64, 'base64').toString('utf8') : undefined);
    } catch {
      /* not JSON: reported below */
    }
    if (!pem) {
      why.push(`kubectl secret ${where}: no certificate in ${s.key}`);
      continue;
    }
    if (pem === stale) {
      why.push(`kubectl secret ${where}: the same certificate as the kept one, which does not verify ${registry}`);
      continue;
    }
    // A certificate that does not verify the registry belongs to another
    // cluster (the kube context points elsewhere): not kept.
    if (probe && (await probeCertificate(registry, pem, opts.signal)) === 'untrusted') {
      why.push(`kubectl secret ${where}: its certificate does not verify ${registry} (another cluster?)`);
      continue;
    }
    await writeAtomic(cached, pem);
    return { ...useCache, source: `kubectl secret ${where} (kept in ${cached}${stale ? ', replacing a stale one' : ''})` };
  }

  const reason = why.length ? why[why.length - 1] : 'no certificate found';
  return {
    registry: { ...passDir, insecureRegistries: [registry] },
    source: 'verification skipped',
    warnings: [`TLS verification skipped for ${registry} only: no certificate that verifies it (${reason}); pass --ca-file to verify it`],
  };
}
