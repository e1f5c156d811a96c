/**
 * Real registries for integration tests: Debian's docker-registry
 * (distribution 2.8) on 127.0.0.1, TLS with the IDPBuilder-like test
 * certificate, filesystem storage in a temp dir, deletes enabled, and one of
 * three auth modes:
 *
 * - `none`     — anonymous push/pull;
 * - `htpasswd` — Basic auth, bcrypt htpasswd file;
 * - `token`    — Bearer tokens from a Gitea-like issuer (see token-issuer.ts).
 *
 * Optionally an nginx reverse proxy sits in front (body-size limit, injected
 * faults); then `host` is the proxy's. Every process is killed on `stop()` and
 * when the test process exits.
 */
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { testCerts, type TestCerts } from './certs.js';
import { startNginxProxy, type NginxProxy, type ProxyOptions } from './nginx.js';
import { readRequestLog, TOKEN_ISSUER, TOKEN_SERVICE, type TokenRequest } from './token-issuer.js';
import { killDaemon, makeTempDir, removeTempDir, requireTool, runOk, spawnDaemon, waitForHttps } from './tools.js';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface StartRegistryOptions {
  /** Default `'none'`. */
  auth?: RegistryAuth;
  /**
   * Put an nginx reverse proxy in front; `host`/`url` then point at nginx.
   * `auth: 'token'` with TLS always has one (without a body-size limit unless
   * given here), so that the token realm is on the registry's host:port like
   * Gitea's. With `tls: false` the realm is the issuer's own https port.
   */
  proxy?: ProxyOptions;
  /** Serve TLS (default true). With false the registry speaks plain HTTP (no nginx proxy; the token issuer stays https). */
  tls?: boolean;
  /** Default `giteaadmin` (IDPBuilder's admin user). */
  username?: string;
  /** Default: random. */
  password?: string;
  /** Token lifetime for `auth: 'token'`, seconds. Default 3600. */
  tokenTtlSeconds?: number;
  /**
   * Host name in `host`, `url` and the token realm (default `localhost`),
   * e.g. `gitea.cnoe.localtest.me` for an IDPBuilder-like registry; it must
   * resolve to 127.0.0.1 (see gitea-registry.ts) and be in the certificate.
   */
  hostname?: string;
}

export interface TestRegistry {
  /** `HOSTNAME:PORT` (default `localhost:PORT`) — what image references use (the proxy's when there is one). */
  host: string;
  /** `https://localhost:PORT` (or http:// without TLS). */
  url: string;
  /** `localhost:PORT` of docker-registry itself, bypassing any proxy. */
  registryHost: string;
  auth: RegistryAuth;
  tls: boolean;
  /** CA that trusts the registry's certificate (PEM). */
  caFile: string;
  /** Directory with `ca.crt` for skopeo/buildah `--cert-dir` options. */
  certDir: string;
  /** The full test certificate set, including an unrelated CA for TLS-failure tests. */
  certs: TestCerts;
  /** Set for `htpasswd` and `token` auth. */
  username?: string;
  password?: string;
  /** Filesystem storage root of the registry. */
  dataDir: string;
  /** For `token` auth: the realm advertised and the requests the issuer has seen. */
  token?: { realm: string; service: string; issuer: string; requests(): TokenRequest[] };
  /** The nginx proxy, when `proxy` was given or auth is `token`. */
  proxy?: NginxProxy;
  /** Stop every process of this registry and delete its temp dir. */
  stop(): Promise<void>;
  /** SIGKILL docker-registry and start it again on the same port and data (for fault tests). */
  restart(): Promise<void>;
  /** Registry (and proxy/issuer) logs so far, for failure messages. */
  logs(): string;
}

/** A free TCP port on 127.0.0.1 (the kernel picks it; tiny race accepted for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function renderRegistryConfig(p: {
  port: number;
  dataDir: string;
  tls: boolean;
  certs: TestCerts;
  secret: string;
  htpasswdFile?: string;
  token?: { realm: string };
}): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${p.dataDir}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${p.port}`,
    // A fixed secret keeps upload session state valid across restart().
    `  secret: ${p.secret}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ];
  if (p.tls) {
    lines.push('  tls:', `    certificate: ${p.certs.certFile}`, `    key: ${p.certs.keyFile}`);
  }
  if (p.htpasswdFile) {
    lines.push('auth:', '  htpasswd:', '    realm: ocistack-test', `    path: ${p.htpasswdFile}`);
  } else if (p.token) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${p.token.realm}`,
      `    service: ${TOKEN_SERVICE}`,
      `    issuer: ${TOKEN_ISSUER}`,
      `    rootcertbundle: ${p.certs.certFile}`,
    );
  }
  lines.push('health:', '  storagedriver:', '    enabled: false', '');
  return lines.join('\n');
}

/** Start a registry (and its token issuer / proxy) and wait until `/v2/` answers. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const hostname = opts.hostname ?? 'localhost';
  const tls = opts.tls ?? true;
  if (!tls && opts.proxy) throw new Error('startRegistry: a proxy needs tls');
  // Gitea serves its token realm on the registry's own host:port; docker-registry
  // cannot, so TLS token registries always sit behind nginx, which routes
  // /v2/token to the issuer. Without an explicit proxy there is no body-size
  // limit ('0'). Plain-HTTP token registries advertise the issuer's own port.
  const proxyOpts: ProxyOptions | undefined = opts.proxy ?? (auth === 'token' && tls ? { maxBodySize: '0' } : undefined);
  const registryBin = requireTool('docker-registry');
  if (auth === 'htpasswd') requireTool('htpasswd');
  if (proxyOpts) requireTool('nginx');
  const certs = await testCerts();
  const dir = makeTempDir(`registry-${auth}`);
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const proxyPort = proxyOpts ? await freePort() : undefined;
  const username = auth === 'none' ? undefined : opts.username ?? 'giteaadmin';
  const password = auth === 'none' ? undefined : opts.password ?? randomBytes(12).toString('base64url');
  const daemons: ChildProcess[] = [];

  let htpasswdFile: string | undefined;
  if (auth === 'htpasswd') {
    htpasswdFile = join(dir, 'htpasswd');
    // -B bcrypt (the only scheme docker-registry accepts), -b password from argv, -n print.
    const line = await runOk(requireTool('htpasswd'), ['-Bbn', username!, password!], { redact: [password!] });
    writeFileSync(htpasswdFile, line.trim() + '\n', { mode: 0o600 });
  }

  let token: TestRegistry['token'];
  let issuerPort: number | undefined;
  const tokenLog = join(dir, 'token-requests.jsonl');
  if (auth === 'token') {
    issuerPort = await freePort();
    const cfgFile = join(dir, 'token-issuer.json');
    writeFileSync(
      cfgFile,
      JSON.stringify({ certs, username, password, port: issuerPort, ttlSeconds: opts.tokenTtlSeconds, requestLog: tokenLog }),
      { mode: 0o600 },
    );
    const issuerJs = fileURLToPath(new URL('./token-issuer.js', import.meta.url));
    const outFd = openSync(join(dir, 'token-issuer.log'), 'a');
    // A separate process: a test blocking its own event loop cannot stall token requests.
    const issuer = spawnDaemon(process.execPath, [issuerJs, cfgFile], { stdio: ['ignore', outFd, outFd] });
    closeSync(outFd);
    daemons.push(issuer);
    await waitForHttps(`https://127.0.0.1:${issuerPort}/`, certs.caFile, (s) => s === 404, issuer);
    // Like Gitea, the realm is on the same host:port as the registry (nginx routes it).
    const realm = `https://${hostname}:${proxyPort ?? issuerPort}/v2/token`;
    token = { realm, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, requests: () => readRequestLog(tokenLog) };
  }

  const configFile = join(dir, 'config.yml');
  writeFileSync(
    configFile,
    renderRegistryConfig({ port, dataDir, tls, certs, secret: randomBytes(16).toString('hex'), htpasswdFile, token }),
  );
  const logFile = join(dir, 'registry.log');
  const scheme = tls ? 'https' : 'http';

  let registry: ChildProcess | undefined;
  const readLog = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const logs = () =>
    `--- docker-registry log\n${readLog(logFile)}` +
    (auth === 'token' ? `--- token issuer log\n${readLog(join(dir, 'token-issuer.log'))}` : '') +
    (proxy ? proxy.logs() : '');

  const launch = async () => {
    const fd = openSync(logFile, 'a');
    registry = spawnDaemon(registryBin, ['serve', configFile], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    try {
      // 200 when anonymous, 401 with a challenge when auth is on: both mean "serving".
      await waitForHttps(`${scheme}://127.0.0.1:${port}/v2/`, certs.caFile, (s) => s === 200 || s === 401, registry);
    } catch (e) {
      throw new Error(`docker-registry did not start: ${(e as Error).message}\n${logs()}`);
    }
  };

  let proxy: NginxProxy | undefined;
  const stopAll = async () => {
    if (proxy) await proxy.stop();
    if (registry) await killDaemon(registry, 'SIGTERM');
    for (const d of daemons) await killDaemon(d, 'SIGTERM');
    removeTempDir(dir);
  };
  try {
    await launch();
    if (proxyOpts) {
      proxy = await startNginxProxy({
        ...proxyOpts,
        certs,
        port: proxyPort!,
        upstream: `127.0.0.1:${port}`,
        tokenUpstream: issuerPort ? `127.0.0.1:${issuerPort}` : undefined,
        dir: join(dir, 'nginx'),
      });
    }
  } catch (e) {
    await stopAll().catch(() => undefined);
    throw e;
  }

  const host = `${hostname}:${proxyPort ?? port}`;
  return {
    host,
    url: `${scheme}://${host}`,
    registryHost: `localhost:${port}`,
    auth,
    tls,
    caFile: certs.caFile,
    certDir: certs.certDir,
    certs,
    username,
    password,
    dataDir,
    token,
    proxy,
    stop: stopAll,
    async restart() {
      if (registry) await killDaemon(registry, 'SIGKILL');
      await launch();
    },
    logs,
  };
}

const shared = new Map<string, Promise<TestRegistry>>();

/**
 * A registry shared by every test in this process (one per auth kind and
 * options). Do not stop() or restart() it; start your own with
 * {@link startRegistry} for that. Use distinct repository names per test.
 */
export function withRegistry(auth: RegistryAuth = 'none', opts: Omit<StartRegistryOptions, 'auth'> = {}): Promise<TestRegistry> {
  const key = JSON.stringify({ auth, ...opts });
  let p = shared.get(key);
  if (!p) {
    p = startRegistry({ ...opts, auth });
    // A failed start must not poison the cache for later callers.
    p.catch(() => shared.delete(key));
    shared.set(key, p);
  }
  return p;
}

/**
 * skopeo options to reach `reg` as source (`src`) or destination (`dest`):
 * trust its CA and pass credentials when it has them. Put these before the
 * image arguments. Credentials go on the command line: tests only, never logged.
 */
export function skopeoArgs(reg: TestRegistry, side: 'src' | 'dest'): string[] {
  const args = reg.tls ? [`--${side}-cert-dir`, reg.certDir] : [`--${side}-tls-verify=false`];
  if (reg.username && reg.password) args.push(`--${side}-creds`, `${reg.username}:${reg.password}`);
  else args.push(`--${side}-no-creds`);
  return args;
}

/** Same as {@link skopeoArgs} for single-image commands such as `skopeo inspect`. */
export function skopeoInspectArgs(reg: TestRegistry): string[] {
  const args = reg.tls ? ['--cert-dir', reg.certDir] : ['--tls-verify=false'];
  if (reg.username && reg.password) args.push('--creds', `${reg.username}:${reg.password}`);
  else args.push('--no-creds');
  return args;
}
