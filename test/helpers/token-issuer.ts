/**
 * A token endpoint that answers like Gitea's container registry token service,
 * for docker-registry configured with `auth.token`:
 *
 * - `GET /v2/token?service=container_registry&scope=...` with correct Basic
 *   auth -> 200 `{"token":"<JWT>"}` (no `expires_in`, like Gitea), granting
 *   every requested scope.
 * - no credentials -> 200 with a token granting only `pull` (Gitea hands
 *   anonymous users a token too; pushing with it is refused by the registry).
 * - wrong credentials -> 401.
 * - any other method (e.g. the OAuth2 `POST` form) -> 404.
 *
 * The JWT is ES256-signed with the test certificate's key and carries the
 * certificate in `x5c`; docker-registry 2.8 verifies the chain against its
 * `rootcertbundle` (the same certificate) and then the signature.
 */
import { createPrivateKey, randomUUID, sign, timingSafeEqual, X509Certificate, type KeyObject } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import type { TestCerts } from './certs.js';

/** Service name Gitea uses in its registry challenge and tokens. */
export const TOKEN_SERVICE = 'container_registry';
/** `iss` claim of issued tokens; docker-registry's `auth.token.issuer` must match. */
export const TOKEN_ISSUER = 'ocistack-test-gitea';

export interface TokenIssuerOptions {
  certs: TestCerts;
  username: string;
  password: string;
  /** Port to listen on (127.0.0.1); 0 = any free port. */
  port?: number;
  /** Token lifetime (exp - iat) in seconds. Default 3600. */
  ttlSeconds?: number;
  /** Anonymous requests get a pull-only token (default) or a 401. */
  anonymous?: 'pull' | 'deny';
  /** Also append each request as a JSON line to this file (used when the issuer runs as a child process). */
  requestLog?: string;
}

/** One request seen by the issuer (credentials are never recorded). */
export interface TokenRequest {
  method: string;
  path: string;
  service: string | null;
  scopes: string[];
  /** Username from Basic auth, if any. */
  user?: string;
  status: number;
}

export interface TokenIssuer {
  /** `https://localhost:PORT/v2/token` — the realm docker-registry advertises. */
  realm: string;
  port: number;
  /** Every request so far, oldest first. */
  requests(): TokenRequest[];
  stop(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** Parse `repository:library/busybox:pull,push` (the name may not contain ':', the type and actions never do). */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter(Boolean),
  };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Build an ES256 JWT the way docker-registry 2.8 verifies it (x5c chain + raw r||s signature). */
export function signRegistryToken(key: KeyObject, certDerB64: string, claims: Record<string, unknown>): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [certDerB64] };
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JOSE wants the raw 64-byte r||s form, not DER.
  const sig = sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' });
  return `${signingInput}.${b64url(sig)}`;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Start the issuer on 127.0.0.1 with the test certificate. */
export async function startTokenIssuer(opts: TokenIssuerOptions): Promise<TokenIssuer> {
  const certPem = readFileSync(opts.certs.certFile);
  const keyPem = readFileSync(opts.certs.keyFile);
  const key = createPrivateKey(keyPem);
  const certDerB64 = new X509Certificate(certPem).raw.toString('base64');
  const ttl = opts.ttlSeconds ?? 3600;
  const requests: TokenRequest[] = [];

  const server: Server = createServer({ cert: certPem, key: keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const entry: TokenRequest = { method: req.method ?? '', path: url.pathname, service: url.searchParams.get('service'), scopes, status: 0 };
    requests.push(entry);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      entry.status = status;
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    res.on('finish', () => {
      if (opts.requestLog) appendFileSync(opts.requestLog, JSON.stringify(entry) + '\n');
    });
    req.resume();
    if (url.pathname !== '/v2/token' || req.method !== 'GET') {
      reply(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
      return;
    }

    let user: string | undefined;
    const authz = req.headers.authorization;
    if (authz) {
      const m = /^Basic\s+(\S+)$/i.exec(authz);
      const decoded = m ? Buffer.from(m[1], 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const u = colon >= 0 ? decoded.slice(0, colon) : '';
      const p = colon >= 0 ? decoded.slice(colon + 1) : '';
      entry.user = u || undefined;
      if (!m || !safeEqual(u, opts.username) || !safeEqual(p, opts.password)) {
        reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, {
          'WWW-Authenticate': 'Basic realm="Gitea Container Registry"',
        });
        return;
      }
      user = u;
    } else if (opts.anonymous === 'deny') {
      reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, {
        'WWW-Authenticate': 'Basic realm="Gitea Container Registry"',
      });
      return;
    }

    const access: Access[] = [];
    for (const s of scopes) {
      const a = parseScope(s);
      if (!a) continue;
      // Authenticated users get what they ask for; anonymous users may only pull.
      const actions = user ? a.actions : a.actions.filter((x) => x === 'pull');
      access.push({ ...a, actions });
    }
    const now = Math.floor(Date.now() / 1000);
    const token = signRegistryToken(key, certDerB64, {
      iss: TOKEN_ISSUER,
      sub: user ?? '',
      aud: url.searchParams.get('service') ?? TOKEN_SERVICE,
      exp: now + ttl,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    });
    reply(200, { token });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  // The issuer must not keep the test process alive.
  server.unref();
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `https://localhost:${port}/v2/token`,
    port,
    requests: () => requests.slice(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Read the JSON-lines request log a child-process issuer writes. */
export function readRequestLog(file: string): TokenRequest[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TokenRequest);
}

/**
 * Child-process mode: `node token-issuer.js <config.json>` where the config is
 * {@link TokenIssuerOptions} as JSON. Running the issuer outside the test
 * process means a test that blocks its event loop (execFileSync skopeo ...)
 * cannot deadlock against it. Prints `listening <port>` when ready.
 */
async function childMain(configFile: string): Promise<void> {
  const opts = JSON.parse(readFileSync(configFile, 'utf8')) as TokenIssuerOptions;
  const issuer = await startTokenIssuer(opts);
  process.stdout.write(`listening ${issuer.port}\n`);
  // Keep running until killed: the server itself is unref'd.
  setInterval(() => undefined, 1 << 30);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2]) {
  childMain(process.argv[2]).catch((e) => {
    process.stderr.write(`token issuer failed: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
