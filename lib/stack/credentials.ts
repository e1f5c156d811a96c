/**
 * Credentials for the stack's Gitea, the first source that has some:
 *
 *  1. explicit (`--creds`, the API's `credentials`);
 *  2. `OCISTACK_USERNAME` / `OCISTACK_PASSWORD`;
 *  3. `idpbuilder get secrets -p gitea -o json`: a JSON array of
 *     `{"IsCore": true, "name": "gitea-credential", "namespace": "gitea",
 *     "username", "password", "token"}` (empty fields omitted), or the plain
 *     text `no secrets found` (cnoe-io/idpbuilder pkg/cmd/get/secrets.go,
 *     pkg/printer/types/internal_types.go);
 *  4. `kubectl get secret -n gitea gitea-credential -o json`: the same
 *     fields base64-encoded under `data`;
 *  5. the auth files `ocistack login` writes and reads
 *     (lib/registry/credentials.ts: REGISTRY_AUTH_FILE, containers auth.json,
 *     docker's config.json, credential helpers).
 *
 * "First that has some", not "first the registry accepts": 1 and 2 are what
 * the user asked for, and silently trying the next source after a rejection
 * would hide a wrong --creds. A rejection is reported naming the source
 * (check.ts).
 *
 * Password before token: Gitea's `/v2/token` takes Basic auth with the
 * user's password or a personal access token as the password. The
 * password is always in idpbuilder's secret and always works (idpbuilder
 * never turns on 2FA, which is when Gitea requires a token); the token
 * (scope `all`, created by idpbuilder's localbuild controller) is missing
 * on older clusters, so it is used only when there is no password.
 *
 * The secret never appears in `source`, `tried`, or an error: command
 * output is parsed here and dropped.
 */
import { resolveCredentials } from '../registry/credentials.js';
import type { Credentials } from '../registry/types.js';
import { runClusterCommand } from './cluster-command.js';

/** Gitea's login user in idpbuilder (the registry owner is its lowercase `giteaadmin`). */
export const GITEA_ADMIN_USER = 'giteaAdmin';
export const GITEA_SECRET = { namespace: 'gitea', name: 'gitea-credential' } as const;

export interface ResolveGiteaCredentialsOptions {
  /** The Gitea registry (`gitea.cnoe.localtest.me:8443`), for the auth-file lookup. */
  registry: string;
  /** `--creds`. */
  credentials?: Credentials;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  kubectl?: string;
  idpbuilder?: string;
}

export interface GiteaCredentials {
  credentials?: Credentials;
  /** `--creds`, `OCISTACK_USERNAME/OCISTACK_PASSWORD`, `idpbuilder get secrets`, `kubectl secret gitea/gitea-credential`, `auth file ...`, `none`. */
  source: string;
  /** Sources tried before it and why each gave nothing. */
  tried: string[];
}

interface SecretFields {
  username?: string;
  password?: string;
  token?: string;
}

/** Credentials from a secret's fields: password, else token; idpbuilder's admin user when none is named. */
function fromFields(f: SecretFields): Credentials | undefined {
  const secret = f.password || f.token;
  if (!secret) return undefined;
  return { username: f.username || GITEA_ADMIN_USER, password: secret };
}

/** Parse `idpbuilder get secrets -p gitea -o json`; a reason string when it holds nothing usable. */
export function parseIdpbuilderSecrets(stdout: string): Credentials | string {
  const text = stdout.trim();
  if (text === '' || text === 'no secrets found') return 'no secrets found';
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    // Never quote the output: it may hold a password.
    return 'its output is not JSON';
  }
  if (!Array.isArray(list)) return 'its output is not a JSON array';
  const entries = list.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null);
  const entry =
    entries.find((e) => e.namespace === GITEA_SECRET.namespace && e.name === GITEA_SECRET.name) ??
    entries.find((e) => e.IsCore === true && e.namespace === GITEA_SECRET.namespace);
  if (!entry) return `no ${GITEA_SECRET.namespace}/${GITEA_SECRET.name} entry`;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return fromFields({ username: str(entry.username), password: str(entry.password), token: str(entry.token) }) ?? `${GITEA_SECRET.name} has no password or token`;
}

/** Parse `kubectl get secret -o json` (base64 `data`); a reason string when it holds nothing usable. */
export function parseKubectlSecret(stdout: string): Credentials | string {
  let obj: { data?: Record<string, unknown> };
  try {
    obj = JSON.parse(stdout) as typeof obj;
  } catch {
    return 'its output is not JSON';
  }
  const data = obj.data ?? {};
  const field = (k: string) => (typeof data[k] === 'string' ? Buffer.from(data[k] as string, 'base64').toString('utf8') : undefined);
  return fromFields({ username: field('username'), password: field('password'), token: field('token') }) ?? 'the secret has no password or token';
}

/** Find credentials for the stack's Gitea (see the module comment for the order). */
export async function resolveGiteaCredentials(opts: ResolveGiteaCredentialsOptions): Promise<GiteaCredentials> {
  const tried: string[] = [];
  if (opts.credentials) return { credentials: opts.credentials, source: '--creds', tried };
  const env = opts.env;
  if (env.OCISTACK_USERNAME && env.OCISTACK_PASSWORD !== undefined) {
    return { credentials: { username: env.OCISTACK_USERNAME, password: env.OCISTACK_PASSWORD }, source: 'OCISTACK_USERNAME/OCISTACK_PASSWORD', tried };
  }
  tried.push(env.OCISTACK_USERNAME ? 'OCISTACK_USERNAME: set without OCISTACK_PASSWORD' : 'OCISTACK_USERNAME/OCISTACK_PASSWORD: not set');

  const idp = await runClusterCommand(opts.idpbuilder ?? 'idpbuilder', ['get', 'secrets', '-p', 'gitea', '-o', 'json'], { env, signal: opts.signal });
  if (idp.status === 'ok') {
    const c = parseIdpbuilderSecrets(idp.stdout);
    if (typeof c !== 'string') return { credentials: c, source: 'idpbuilder get secrets', tried };
    tried.push(`idpbuilder get secrets: ${c}`);
  } else {
    tried.push(`idpbuilder get secrets: ${idp.status === 'missing' ? 'idpbuilder is not installed' : idp.reason}`);
  }

  const where = `${GITEA_SECRET.namespace}/${GITEA_SECRET.name}`;
  const kc = await runClusterCommand(opts.kubectl ?? 'kubectl', ['get', 'secret', '-n', GITEA_SECRET.namespace, GITEA_SECRET.name, '-o', 'json', '--request-timeout=10s'], { env, signal: opts.signal });
  if (kc.status === 'ok') {
    const c = parseKubectlSecret(kc.stdout);
    if (typeof c !== 'string') return { credentials: c, source: `kubectl secret ${where}`, tried };
    tried.push(`kubectl secret ${where}: ${c}`);
  } else {
    tried.push(`kubectl secret ${where}: ${kc.status === 'missing' ? 'kubectl is not installed' : kc.reason}`);
  }

  // Only the auth files here: no `credentialsFor`, so resolveCredentials
  // does not look at --creds or the environment a second time.
  const file = await resolveCredentials(opts.registry, { env });
  if (file.credentials) return { credentials: file.credentials, source: `auth file ${file.source}`, tried };
  tried.push(`auth files: nothing for ${opts.registry}`);
  return { source: 'none', tried };
}
