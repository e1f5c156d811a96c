/**
 * Where registry credentials come from, first that applies:
 *  1. `credentialsByHost[host]` (API, `--src-creds`/`--dest-creds`);
 *  2. explicit credentials (API, `--creds`), only for the hosts in `credentialsFor`
 *     (the operation's targets, see credential-scope.ts);
 *  3. `OCISTACK_USERNAME` / `OCISTACK_PASSWORD`, with the same scope as 2;
 *  4. auth files, in order `REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`,
 *     `${DOCKER_CONFIG:-~/.docker}/config.json`; in each, `credHelpers[host]`,
 *     then `auths[host].auth`, then `credsStore` (`docker-credential-<name>`).
 * The result names its source so verbose output can say where credentials
 * came from; the secret itself never leaves this module except in the
 * Authorization header.
 */
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { OcistackError } from '../errors.js';
import { DOCKER_HUB } from './reference.js';
import { credentialsForHost, inCredentialScope } from './credential-scope.js';
import type { Credentials, RegistryOptions } from './types.js';

export interface ResolvedCredentials {
  credentials?: Credentials;
  /** e.g. `--creds`, `OCISTACK_USERNAME`, `/root/.docker/config.json (auths)`, `docker-credential-pass`, `anonymous`. */
  source: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** The docker/podman auth file format. */
export interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || os.homedir();
}

/** `${DOCKER_CONFIG:-~/.docker}/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.DOCKER_CONFIG || path.join(home(env), '.docker'), 'config.json');
}

/** Auth files in lookup order (existing or not). */
export function authFilePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.REGISTRY_AUTH_FILE) out.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) out.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  out.push(dockerConfigPath(env));
  return out;
}

/** Keys an `auths` map may use for one registry. */
function authKeys(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
  if (registry === DOCKER_HUB) keys.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return keys;
}

async function readAuthFile(file: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as AuthFile;
  } catch (e) {
    throw new OcistackError(`auth file ${file} is not valid JSON: ${(e as Error).message}`, {
      code: 'REGISTRY_AUTH',
      hint: `fix or remove ${file}`,
    });
  }
}

function decodeAuth(auth: string, file: string, registry: string): Credentials {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const c = text.indexOf(':');
  if (c < 0) {
    throw new OcistackError(`auth entry for ${registry} in ${file} is malformed`, {
      code: 'REGISTRY_AUTH',
      registry,
      hint: `run "ocistack login ${registry}" again`,
    });
  }
  return { username: text.slice(0, c), password: text.slice(c + 1) };
}

/** Run `docker-credential-<helper> <action>` with `input` on stdin. */
function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [action], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) =>
      reject(
        new OcistackError(`credential helper docker-credential-${helper} cannot run: ${e.message}`, {
          code: 'REGISTRY_AUTH',
          hint: `install docker-credential-${helper} in PATH, or remove it from your auth file`,
        }),
      ),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function helperGet(helper: string, registry: string, env: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  for (const server of [registry, `https://${registry}`]) {
    const r = await runHelper(helper, 'get', server, env);
    if (r.code !== 0) continue; // "credentials not found in native keychain"
    const j = JSON.parse(r.stdout) as { Username?: string; Secret?: string };
    if (j.Secret === undefined) continue;
    return { username: j.Username ?? '', password: j.Secret };
  }
  return undefined;
}

/** Find the credentials for one registry host. */
export async function resolveCredentials(registry: string, opts: RegistryOptions = {}): Promise<ResolvedCredentials> {
  const env = opts.env ?? process.env;
  const named = credentialsForHost(opts, registry);
  if (named) return { credentials: named, source: 'credentialsByHost' };
  // Credentials without a host of their own go to the operation's targets only,
  // never to a base image's registry (a password for Gitea must not reach docker.io).
  const target = inCredentialScope(opts, registry);
  if (opts.credentials && target) {
    return { credentials: opts.credentials, source: '--creds' };
  }
  if (target && env.OCISTACK_USERNAME && env.OCISTACK_PASSWORD !== undefined) {
    return { credentials: { username: env.OCISTACK_USERNAME, password: env.OCISTACK_PASSWORD }, source: 'OCISTACK_USERNAME/OCISTACK_PASSWORD' };
  }
  for (const file of authFilePaths(env)) {
    const conf = await readAuthFile(file);
    if (!conf) continue;
    const helper = conf.credHelpers?.[registry];
    if (helper) {
      const c = await helperGet(helper, registry, env);
      if (c) return { credentials: c, source: `docker-credential-${helper} (credHelpers in ${file})` };
    }
    for (const key of authKeys(registry)) {
      const entry = conf.auths?.[key];
      if (entry?.auth) return { credentials: decodeAuth(entry.auth, file, registry), source: `${file} (auths)` };
      if (entry?.username && entry.password !== undefined) {
        return { credentials: { username: entry.username, password: entry.password }, source: `${file} (auths)` };
      }
    }
    if (conf.credsStore) {
      const c = await helperGet(conf.credsStore, registry, env);
      if (c) return { credentials: c, source: `docker-credential-${conf.credsStore} (credsStore in ${file})` };
    }
  }
  return { source: 'anonymous' };
}

/** Where `login`/`logout` write: `REGISTRY_AUTH_FILE` if set, else docker's config.json. */
export function loginFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.REGISTRY_AUTH_FILE || dockerConfigPath(env);
}

async function writeAuthFile(file: string, conf: AuthFile): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await fsp.writeFile(tmp, JSON.stringify(conf, null, '\t') + '\n', { mode: 0o600 });
  await fsp.rename(tmp, file);
}

/**
 * Store credentials for a registry in docker's format (`auths[host].auth` =
 * base64 `user:password`), or in the configured `credsStore`/`credHelpers`
 * helper. Other keys of the file are kept. Returns the file or helper used.
 */
export async function storeCredentials(registry: string, creds: Credentials, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = loginFilePath(env);
  const conf = (await readAuthFile(file)) ?? {};
  const helper = conf.credHelpers?.[registry] ?? conf.credsStore;
  if (helper) {
    const r = await runHelper(helper, 'store', JSON.stringify({ ServerURL: registry, Username: creds.username, Secret: creds.password }), env);
    if (r.code !== 0) {
      throw new OcistackError(`docker-credential-${helper} could not store the credentials for ${registry}`, {
        code: 'REGISTRY_AUTH',
        registry,
        hint: `check that docker-credential-${helper} works: ${r.stderr.trim().slice(0, 200)}`,
      });
    }
    return `docker-credential-${helper}`;
  }
  conf.auths = conf.auths ?? {};
  conf.auths[registry] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  await writeAuthFile(file, conf);
  return file;
}

/** Remove stored credentials for a registry. Returns false when there were none. */
export async function eraseCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const file = loginFilePath(env);
  const conf = await readAuthFile(file);
  if (!conf) return false;
  let found = false;
  for (const key of authKeys(registry)) {
    if (conf.auths?.[key]) {
      delete conf.auths[key];
      found = true;
    }
  }
  const helper = conf.credHelpers?.[registry] ?? conf.credsStore;
  if (helper) {
    const r = await runHelper(helper, 'erase', registry, env);
    if (r.code === 0) found = true;
  }
  if (found) await writeAuthFile(file, conf);
  return found;
}
