/**
 * An IDPBuilder-like Gitea registry for tests: docker-registry with the
 * IDPBuilder-like self-signed certificate (certs.ts: SANs cnoe.localtest.me
 * and *.cnoe.localtest.me), Gitea's token flow (`GET /v2/token` with Basic
 * auth -> `{"token": ...}` without `expires_in`, served on the registry's
 * own host:port by nginx; token-issuer.ts) for the login user `giteaAdmin`,
 * under the names idpbuilder gives it:
 *
 * - `gitea.cnoe.localtest.me:<port>` (nginx routes everything to the registry);
 * - with `pathRouting`, `cnoe.localtest.me:<port>` where only `/v2` reaches
 *   the registry, as `idpbuilder create --use-path-routing` sets up.
 *
 * Tests use a free port, so the port plays idpbuilder's `--port`.
 *
 * Name resolution: both names must resolve to 127.0.0.1. localtest.me does
 * that in public DNS, but CI and sandboxes have none, so
 * {@link ensureIdpHostsEntry} adds `127.0.0.1 gitea.cnoe.localtest.me
 * cnoe.localtest.me` to /etc/hosts when a name does not resolve there
 * (idempotent; needs root, as scripts/test.sh runs in CI; without root it
 * fails with the line to add).
 */
import { lookup } from 'node:dns/promises';
import { appendFileSync, readFileSync } from 'node:fs';
import { startRegistry, type TestRegistry } from './registry.js';

export const IDP_HOST = 'cnoe.localtest.me';
export const GITEA_HOST = `gitea.${IDP_HOST}`;
export const GITEA_USER = 'giteaAdmin';
export const HOSTS_LINE = `127.0.0.1 ${GITEA_HOST} ${IDP_HOST}`;

async function resolvesToLoopback(name: string): Promise<boolean> {
  try {
    const r = await lookup(name, { family: 4 });
    return r.address === '127.0.0.1';
  } catch {
    return false;
  }
}

/** Make gitea.cnoe.localtest.me and cnoe.localtest.me resolve to 127.0.0.1 (see the module comment). */
export async function ensureIdpHostsEntry(hostsFile = '/etc/hosts'): Promise<void> {
  if ((await resolvesToLoopback(GITEA_HOST)) && (await resolvesToLoopback(IDP_HOST))) return;
  const text = readFileSync(hostsFile, 'utf8');
  const has = (name: string) => text.split('\n').some((l) => /^\s*127\.0\.0\.1\s/.test(l) && l.split(/\s+/).includes(name));
  if (!has(GITEA_HOST) || !has(IDP_HOST)) {
    try {
      appendFileSync(hostsFile, `${text.endsWith('\n') || text === '' ? '' : '\n'}${HOSTS_LINE}\n`);
    } catch (e) {
      throw new Error(`${GITEA_HOST} does not resolve to 127.0.0.1 and ${hostsFile} cannot be changed (${(e as Error).message}): add "${HOSTS_LINE}" to ${hostsFile}, or run bash scripts/test.sh as root`);
    }
  }
  if (!(await resolvesToLoopback(GITEA_HOST)) || !(await resolvesToLoopback(IDP_HOST))) {
    throw new Error(`${GITEA_HOST} and ${IDP_HOST} still do not resolve to 127.0.0.1 after adding "${HOSTS_LINE}" to ${hostsFile}`);
  }
}

export interface GiteaTestRegistry extends TestRegistry {
  /** `gitea.cnoe.localtest.me:<port>`, or `cnoe.localtest.me:<port>` with path routing (= `host`). */
  registry: string;
  /** idpbuilder's --port. */
  port: number;
  pathRouting: boolean;
  /** The certificate the registry serves (idpbuilder's `tls.crt` / `ca.crt`), PEM. */
  certPem: string;
  username: string;
  password: string;
}

export interface StartGiteaRegistryOptions {
  pathRouting?: boolean;
  /** Default: random. */
  password?: string;
}

/** Start an IDPBuilder-like Gitea registry (stop() it when done). */
export async function startGiteaRegistry(opts: StartGiteaRegistryOptions = {}): Promise<GiteaTestRegistry> {
  await ensureIdpHostsEntry();
  const pathRouting = opts.pathRouting ?? false;
  const reg = await startRegistry({
    auth: 'token',
    hostname: pathRouting ? IDP_HOST : GITEA_HOST,
    username: GITEA_USER,
    password: opts.password,
    // Every Gitea ingress of idpbuilder has proxy-body-size 1024m.
    proxy: { maxBodySize: '1024m', pathRouting },
  });
  const port = Number(reg.host.slice(reg.host.lastIndexOf(':') + 1));
  return {
    ...reg,
    registry: reg.host,
    port,
    pathRouting,
    certPem: readFileSync(reg.certs.certFile, 'utf8'),
    username: reg.username!,
    password: reg.password!,
  };
}
