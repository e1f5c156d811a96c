/**
 * Which registry hosts explicit credentials are for.
 *
 * Credentials belong to one registry. `--creds`, `registry.credentials` and
 * `OCISTACK_USERNAME`/`OCISTACK_PASSWORD` are sent only to the hosts in
 * `credentialsFor`, the targets of the operation; `credentialsByHost` names
 * credentials for other hosts explicitly. Operations fill `credentialsFor`
 * in when the caller left it unset (see {@link withCredentialScope}); when it
 * is still unset at lookup time it means "no host", so a code path that
 * forgets to scope sends nothing rather than everything.
 */
import { DOCKER_HUB } from './reference.js';
import type { Credentials, RegistryOptions } from './types.js';

/** Host keys as references spell them: lowercase, no scheme or path, Docker Hub's aliases folded. */
export function normalizeRegistryHost(host: string): string {
  let h = host.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  h = h.replace(/\/.*$/, '');
  if (h === 'index.docker.io' || h === 'registry-1.docker.io') return DOCKER_HUB;
  return h;
}

/**
 * `opts` with `credentialsFor` set to `hosts` unless the caller chose the
 * scope already (an explicit `credentialsFor`, even empty, is kept).
 */
export function withCredentialScope(opts: RegistryOptions | undefined, hosts: string[]): RegistryOptions {
  const o = opts ?? {};
  if (o.credentialsFor !== undefined) return o;
  return { ...o, credentialsFor: [...new Set(hosts)] };
}

/** Is `registry` one of the hosts `credentials` and OCISTACK_USERNAME/PASSWORD apply to? */
export function inCredentialScope(opts: RegistryOptions, registry: string): boolean {
  const want = normalizeRegistryHost(registry);
  return (opts.credentialsFor ?? []).some((h) => h === '*' || normalizeRegistryHost(h) === want);
}

/** Credentials named for `registry` in `credentialsByHost`, if any. */
export function credentialsForHost(opts: RegistryOptions, registry: string): Credentials | undefined {
  if (!opts.credentialsByHost) return undefined;
  const want = normalizeRegistryHost(registry);
  for (const [host, creds] of Object.entries(opts.credentialsByHost)) {
    if (normalizeRegistryHost(host) === want) return creds;
  }
  return undefined;
}
