/**
 * Where the stack's images go and how to reach it, with zero set-up:
 *
 *   resolveGiteaTarget  host, port, path routing: flags, else the cluster's
 *                       `localbuilds.idpbuilder.cnoe.io` object, else
 *                       idpbuilder's defaults;
 *   resolveGiteaAccess  the target plus credentials (credentials.ts) and
 *                       trust (trust.ts), as RegistryOptions scoped to the
 *                       Gitea host only.
 *
 * idpbuilder keeps its `create` flags in the cluster-scoped Localbuild
 * object (`spec.buildCustomization`: `host`, `port` as a string,
 * `usePathRouting`, `protocol`; cnoe-io/idpbuilder api/v1alpha1
 * localbuild_types.go), so reading it back gives the registry name the
 * cluster's ingress answers to.
 */
import { OcistackError, UsageError } from '../errors.js';
import type { Credentials, RegistryOptions } from '../registry/types.js';
import { runClusterCommand } from './cluster-command.js';
import { resolveGiteaCredentials } from './credentials.js';
import { resolveGiteaTrust } from './trust.js';
import type { GiteaAccess, GiteaTarget } from './types.js';

/** idpbuilder create's defaults (pkg/cmd/create/root.go). */
export const IDPBUILDER_DEFAULTS = { host: 'cnoe.localtest.me', port: 8443, pathRouting: false, protocol: 'https' } as const;
/** Gitea's owner for every stack image: the admin user, lowercased as Gitea's registry names it. */
export const GITEA_OWNER = 'giteaadmin';
/** The CRD idpbuilder keeps its build settings in. */
export const LOCALBUILD_RESOURCE = 'localbuilds.idpbuilder.cnoe.io';

export interface ResolveGiteaTargetOptions {
  /** idpbuilder's --host. */
  host?: string;
  /** idpbuilder's --port. */
  port?: number | string;
  /** idpbuilder's --use-path-routing. */
  pathRouting?: boolean;
  /** idpbuilder's --protocol. */
  protocol?: 'https' | 'http';
  /** Environment: PATH finds kubectl, KUBECONFIG/HOME its config. */
  env: NodeJS.ProcessEnv;
  /** kubectl command (default `kubectl` on env.PATH). */
  kubectl?: string;
  signal?: AbortSignal;
}

/** A DNS name (or IPv4 address) as idpbuilder accepts for --host, lowercased. */
const HOST_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

function checkHost(host: string, bad: (msg: string) => Error): string {
  const h = host.trim().toLowerCase();
  if (!HOST_RE.test(h) || h.length > 253) throw bad(`host "${host}" is not a valid host name`);
  return h;
}

function checkPort(port: number | string, bad: (msg: string) => Error): number {
  const n = typeof port === 'number' ? port : /^\s*\d+\s*$/.test(port) ? Number(port) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad(`port "${port}" is not a TCP port (1-65535)`);
  return n;
}

function checkProtocol(p: string, bad: (msg: string) => Error): 'https' | 'http' {
  const v = p.trim().toLowerCase();
  if (v !== 'https' && v !== 'http') throw bad(`protocol "${p}" is neither https nor http`);
  return v;
}

/** The target for given settings: `gitea.<host>:<port>`, or `<host>:<port>` with path routing. */
export function giteaTarget(
  s: { host: string; port: number; pathRouting: boolean; protocol?: 'https' | 'http' },
  source: GiteaTarget['source'],
  sourceDetail?: string,
): GiteaTarget {
  const registry = s.pathRouting ? `${s.host}:${s.port}` : `gitea.${s.host}:${s.port}`;
  const t: GiteaTarget = { host: s.host, port: s.port, pathRouting: s.pathRouting, registry, owner: GITEA_OWNER, source };
  if (s.protocol === 'http') t.protocol = 'http';
  if (sourceDetail) t.sourceDetail = sourceDetail;
  return t;
}

interface BuildCustomization {
  host?: unknown;
  port?: unknown;
  usePathRouting?: unknown;
  protocol?: unknown;
}

interface LocalbuildItem {
  metadata?: { name?: string };
  spec?: { buildCustomization?: BuildCustomization };
}

/** One Localbuild's settings, idpbuilder's defaults for fields it leaves empty. */
function settingsOf(item: LocalbuildItem): { name: string; host: string; port: number; pathRouting: boolean; protocol: 'https' | 'http' } {
  const name = item.metadata?.name ?? '(unnamed)';
  const bc = item.spec?.buildCustomization ?? {};
  const bad = (msg: string) =>
    new OcistackError(`localbuild ${name}: ${msg}`, {
      code: 'STACK_CLUSTER',
      hint: `pass --host/--port as the cluster was created (idpbuilder create --host ... --port ...), or fix "kubectl get ${LOCALBUILD_RESOURCE} ${name} -o yaml"`,
    });
  const host = typeof bc.host === 'string' && bc.host ? checkHost(bc.host, bad) : IDPBUILDER_DEFAULTS.host;
  const port = (typeof bc.port === 'string' && bc.port) || typeof bc.port === 'number' ? checkPort(bc.port as string | number, bad) : IDPBUILDER_DEFAULTS.port;
  const protocol = typeof bc.protocol === 'string' && bc.protocol ? checkProtocol(bc.protocol, bad) : IDPBUILDER_DEFAULTS.protocol;
  return { name, host, port, pathRouting: bc.usePathRouting === true, protocol };
}

/**
 * Where the stack's Gitea registry is. Any of host/port/pathRouting/protocol
 * given means the caller names the cluster: the others take idpbuilder's
 * defaults and the cluster is not asked (the current kube context may be
 * another cluster). Else the cluster's Localbuild object, else the defaults,
 * with the reason in `sourceDetail`: a missing kubectl or an unreachable
 * cluster is not an error, since the defaults are what most clusters use.
 */
export async function resolveGiteaTarget(opts: ResolveGiteaTargetOptions): Promise<GiteaTarget> {
  const flagged = opts.host !== undefined || opts.port !== undefined || opts.pathRouting !== undefined || opts.protocol !== undefined;
  if (flagged) {
    const usage = (msg: string) => new UsageError(msg, 'write it as for idpbuilder create, e.g. --host cnoe.localtest.me --port 8443');
    return giteaTarget(
      {
        host: opts.host !== undefined ? checkHost(opts.host, usage) : IDPBUILDER_DEFAULTS.host,
        port: opts.port !== undefined ? checkPort(opts.port, usage) : IDPBUILDER_DEFAULTS.port,
        pathRouting: opts.pathRouting ?? IDPBUILDER_DEFAULTS.pathRouting,
        protocol: opts.protocol !== undefined ? checkProtocol(opts.protocol, usage) : IDPBUILDER_DEFAULTS.protocol,
      },
      'flags',
    );
  }
  const kubectl = opts.kubectl ?? 'kubectl';
  const r = await runClusterCommand(kubectl, ['get', LOCALBUILD_RESOURCE, '-o', 'json', '--request-timeout=10s'], { env: opts.env, signal: opts.signal });
  if (r.status === 'missing') return giteaTarget(IDPBUILDER_DEFAULTS, 'defaults', 'kubectl is not installed');
  if (r.status === 'failed') return giteaTarget(IDPBUILDER_DEFAULTS, 'defaults', `kubectl: ${r.reason}`);
  let items: LocalbuildItem[];
  try {
    const list = JSON.parse(r.stdout) as { items?: LocalbuildItem[] };
    items = Array.isArray(list.items) ? list.items : [];
  } catch {
    return giteaTarget(IDPBUILDER_DEFAULTS, 'defaults', `kubectl get ${LOCALBUILD_RESOURCE} printed no JSON`);
  }
  if (items.length === 0) return giteaTarget(IDPBUILDER_DEFAULTS, 'defaults', `no ${LOCALBUILD_RESOURCE} object in the cluster`);
  const all = items.map(settingsOf);
  const first = all[0]!;
  // idpbuilder makes one Localbuild per cluster and itself reads the first
  // (pkg/util/idp.go). Several that disagree cannot be told apart from here,
  // and pushing to the wrong one fails silently (the apps never see the
  // image), so that is an error naming them rather than a guess.
  const differs = all.some((s) => s.host !== first.host || s.port !== first.port || s.pathRouting !== first.pathRouting || s.protocol !== first.protocol);
  if (differs) {
    const names = all.map((s) => `${s.name} (${giteaTarget(s, 'cluster').registry})`).join(', ');
    throw new OcistackError(`the cluster has ${all.length} ${LOCALBUILD_RESOURCE} objects with different settings: ${names}`, {
      code: 'STACK_CLUSTER_AMBIGUOUS',
      hint: 'say which one with --host, --port and --use-path-routing',
    });
  }
  const detail = all.length === 1 ? `localbuild ${first.name}` : `localbuilds ${all.map((s) => s.name).join(', ')}`;
  return giteaTarget(first, 'cluster', detail);
}

/** What the command line (or a library caller) says; everything else is found. */
export interface ResolveGiteaAccessOptions extends ResolveGiteaTargetOptions {
  /** `--creds` (first in the credential order). */
  credentials?: Credentials;
  /** `--ca-file`, `--cert-dir`, `--insecure` (first in the trust order). */
  caFile?: string;
  certDir?: string;
  insecure?: boolean;
  /** `list` needs only the target (no credentials, no certificate); `build` and `push` need everything. Default `push`. */
  purpose?: 'list' | 'build' | 'push';
  /** idpbuilder command (default `idpbuilder` on env.PATH). */
  idpbuilder?: string;
  /**
   * Check a certificate against the live registry before trusting or
   * keeping it (default true; a TLS handshake, a few ms). False trusts the
   * cached or cluster certificate unchecked.
   */
  probe?: boolean;
}

/**
 * The target, credentials and trust for the stack's Gitea. The returned
 * `registry` options scope everything to the Gitea host: credentials in
 * `credentialsByHost` (and `credentialsFor` set to it, so
 * OCISTACK_USERNAME/PASSWORD never reach a base image's registry),
 * verification skipped for that host only. Nothing here contacts the
 * registry except the optional certificate probe; {@link checkGiteaAccess}
 * (check.ts) does the round-trip.
 */
export async function resolveGiteaAccess(opts: ResolveGiteaAccessOptions): Promise<GiteaAccess> {
  const target = await resolveGiteaTarget(opts);
  const registry = target.registry;
  if (opts.purpose === 'list') {
    return { target, credentialSource: 'not needed', registry: { env: opts.env }, trustSource: 'not needed', warnings: [] };
  }
  const [creds, trust] = await Promise.all([
    resolveGiteaCredentials({ registry, credentials: opts.credentials, env: opts.env, signal: opts.signal, kubectl: opts.kubectl, idpbuilder: opts.idpbuilder }),
    resolveGiteaTrust({
      registry,
      protocol: target.protocol ?? 'https',
      caFile: opts.caFile,
      certDir: opts.certDir,
      insecure: opts.insecure,
      env: opts.env,
      signal: opts.signal,
      kubectl: opts.kubectl,
      probe: opts.probe,
    }),
  ]);
  const options: RegistryOptions = { ...trust.registry, env: opts.env, credentialsFor: [registry] };
  if (creds.credentials) options.credentialsByHost = { [registry]: creds.credentials };
  const access: GiteaAccess = {
    target,
    credentialSource: creds.source,
    registry: options,
    trustSource: trust.source,
    warnings: trust.warnings,
    credentialsTried: creds.tried,
  };
  if (creds.credentials) access.credentials = creds.credentials;
  return access;
}
