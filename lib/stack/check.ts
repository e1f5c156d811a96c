/**
 * One real round-trip to the stack's Gitea before any build work: `GET /v2/`,
 * answering its challenge (Gitea: a Bearer token from `/v2/token` with
 * Basic auth). A failure becomes an error that names the registry, where
 * the settings came from and the fix, instead of surfacing after the first
 * image was built.
 */
import { OcistackError } from '../errors.js';
import { RegistrySession } from '../registry/client.js';
import type { GiteaAccess } from './types.js';

export interface CheckGiteaAccessOptions {
  signal?: AbortSignal;
}

/** Where the registry name came from, for hints: `flags`, `localbuild localdev`, `defaults (kubectl is not installed)`. */
function targetOrigin(a: GiteaAccess): string {
  const t = a.target;
  if (t.source === 'flags') return '--host/--port';
  return t.sourceDetail ? (t.source === 'cluster' ? t.sourceDetail : `${t.source}: ${t.sourceDetail}`) : t.source;
}

function unreachable(a: GiteaAccess, e: OcistackError): OcistackError {
  const reg = a.target.registry;
  const cause = String((e.cause as Error | undefined)?.message ?? e.message);
  const unresolved = /ENOTFOUND|EAI_AGAIN/.test(cause);
  const hint = unresolved
    ? `${a.target.registry.replace(/:\d+$/, '')} does not resolve: add "127.0.0.1 ${a.target.registry.replace(/:\d+$/, '')}" to /etc/hosts, or pass --host as the cluster was created`
    : `is idpbuilder running? idpbuilder create${a.target.source === 'defaults' ? '' : ` (the registry name came from ${targetOrigin(a)})`}; ` +
      `a cluster created with --host/--port/--use-path-routing needs the same flags here when kubectl cannot see it`;
  return new OcistackError(`nothing answers at ${a.target.protocol === 'http' ? 'http' : 'https'}://${reg} (the stack's Gitea registry; from ${targetOrigin(a)})`, {
    code: 'REGISTRY_UNREACHABLE',
    registry: reg,
    hint,
    cause: e,
  });
}

function untrusted(a: GiteaAccess, e: OcistackError): OcistackError {
  const reg = a.target.registry;
  return new OcistackError(`the certificate of ${reg} is not trusted (trust from: ${a.trustSource}): ${e.message}`, {
    code: 'TLS',
    registry: reg,
    hint:
      `if the cluster was recreated, remove the kept certificate (rm -r ~/.config/ocistack/certs.d/${reg}) and run again with kubectl pointing at the cluster; ` +
      `or pass --ca-file with the output of "kubectl get secret -n ingress-nginx idpbuilder-cert -o jsonpath='{.data.tls\\.crt}' | base64 -d", or --insecure`,
    cause: e,
  });
}

function rejected(a: GiteaAccess, e?: OcistackError): OcistackError {
  const reg = a.target.registry;
  return new OcistackError(`${reg} rejected the credentials from ${a.credentialSource} (user ${a.credentials?.username ?? '?'})`, {
    code: 'REGISTRY_AUTH',
    registry: reg,
    hint:
      `wrong password? "idpbuilder get secrets -p gitea" shows the current one; pass --creds giteaAdmin:PASSWORD, ` +
      `set OCISTACK_USERNAME/OCISTACK_PASSWORD, or run "ocistack login ${reg}"`,
    cause: e,
  });
}

function noCredentials(a: GiteaAccess): OcistackError {
  const reg = a.target.registry;
  const tried = a.credentialsTried?.length ? ` (tried: ${a.credentialsTried.join('; ')})` : '';
  return new OcistackError(`no credentials for ${reg}${tried}`, {
    code: 'REGISTRY_AUTH',
    registry: reg,
    hint: `point kubectl at the idpbuilder cluster, or pass --creds giteaAdmin:PASSWORD (the password: idpbuilder get secrets -p gitea), or run "ocistack login ${reg}"`,
  });
}

/**
 * Check that `access` reaches the registry, trusts it and is let in.
 * Throws REGISTRY_UNREACHABLE ("is idpbuilder running?"), TLS (certificate
 * not trusted, with the fixes) or REGISTRY_AUTH (credentials rejected, or
 * none found: with the sources tried). Never prints or includes a secret.
 */
export async function checkGiteaAccess(access: GiteaAccess, opts: CheckGiteaAccessOptions = {}): Promise<void> {
  const reg = access.target.registry;
  // Few tries: a stopped cluster should be reported in seconds, not after the
  // push's full retry schedule.
  const session = new RegistrySession({
    ...access.registry,
    signal: opts.signal ?? access.registry.signal,
    retry: { attempts: 2, baseDelayMs: 200, maxDelayMs: 500 },
    timeouts: { connectMs: 10_000, tlsMs: 10_000, idleMs: 15_000, ...access.registry.timeouts },
  });
  try {
    let res;
    try {
      res = await session.client(reg).request({ method: 'GET', url: '/v2/', scopes: [] });
    } catch (e) {
      if (!(e instanceof OcistackError)) throw e;
      if (e.code === 'REGISTRY_UNREACHABLE' || e.code === 'REGISTRY_TIMEOUT' || e.code === 'PLAIN_HTTP') throw unreachable(access, e);
      if (e.code === 'TLS') throw untrusted(access, e);
      if (e.code === 'REGISTRY_AUTH') throw access.credentials ? rejected(access, e) : noCredentials(access);
      throw e;
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.status === 401 || res.status === 403) throw access.credentials ? rejected(access) : noCredentials(access);
    if (res.status === 404) {
      throw new OcistackError(`${reg} answers, but not as a registry (GET /v2/: HTTP 404)`, {
        code: 'REGISTRY_HTTP',
        registry: reg,
        hint: access.target.pathRouting
          ? 'the cluster may not use path routing: drop --use-path-routing'
          : 'the cluster may use path routing (idpbuilder create --use-path-routing): pass --use-path-routing',
      });
    }
    if (!res.ok) {
      throw new OcistackError(`${reg} answered GET /v2/ with HTTP ${res.status}`, { code: 'REGISTRY_HTTP', registry: reg, hint: 'check that Gitea is up: kubectl get pods -n gitea' });
    }
    // Gitea hands anonymous users a pull token, so /v2/ answers 200 without
    // credentials; a push would then be refused. Say so now.
    if (!access.credentials) throw noCredentials(access);
  } finally {
    session.close();
  }
}
