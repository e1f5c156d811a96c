/**
 * HTTP client for one registry host: its TLS agent, its credentials, its
 * tokens (cached per scope), retries with backoff, and redirects that never
 * carry Authorization to another host.
 */
import type * as http from 'node:http';
import type { Readable } from 'node:stream';
import { OcistackError } from '../errors.js';
import { silent, type ProgressListener } from '../progress/events.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { resolveCredentials, type ResolvedCredentials } from './credentials.js';
import { apiHost } from './reference.js';
import { abortError, BODY_LIMITS, DEFAULT_TIMEOUTS, formatDuration, httpRequest, StallError, type HttpResponse, type Timeouts } from './http.js';
import { backoffDelay, isRetryableStatus, resolveRetry, retryAfterMs, sleep, type ResolvedRetry } from './retry.js';
import { agentFor, errorCode, hostListed, isPlainHttpAnswer, isTlsError, tlsError } from './tls.js';
import type { RegistryOptions } from './types.js';

export type Body = Buffer | Readable | string;
/** A registry's answer (fetch-like: status, ok, headers.get, body, arrayBuffer/text/json). */
export type Response = HttpResponse;

export interface RequestSpec {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** Path on the registry (`/v2/…`) or an absolute URL (upload locations). */
  url: string;
  headers?: Record<string, string>;
  /** Called once per try, so streams can be recreated for a retry. */
  body?: () => Body;
  /** Token scopes, e.g. `repository:owner/app:pull,push`. */
  scopes: string[];
  /** Retry network errors, 5xx and 429 here (default true). Uploads that resume themselves pass false. */
  retry?: boolean;
  /** What the request does, for a stall's message (e.g. `upload of blob sha256:…`). */
  what?: string;
}

const USER_AGENT = 'ocistack/0.1';
/** Token lifetime when the issuer does not say (Gitea): the spec's default. */
const DEFAULT_TOKEN_SECONDS = 60;

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Shared by all clients of one operation: a token for a scope is fetched once. */
export class RegistrySession {
  private readonly clients = new Map<string, RegistryClient>();
  readonly progress: ProgressListener;
  constructor(readonly options: RegistryOptions = {}) {
    this.progress = options.onProgress ?? silent;
  }
  client(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      c = new RegistryClient(registry, this.options, this.progress);
      this.clients.set(registry, c);
    }
    return c;
  }
  /** Close keep-alive sockets. */
  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}

/**
 * Agents for hosts a registry sends us to (token realm, blob storage
 * redirects). They get the call's trust roots (`--ca-file`, certs.d) but
 * skip verification only when that host itself is listed as insecure.
 */
const otherAgents = new WeakMap<RegistryOptions, Map<string, http.Agent>>();
function agentForOther(url: URL, opts: RegistryOptions): http.Agent | undefined {
  if (url.protocol !== 'https:') return undefined;
  let m = otherAgents.get(opts);
  if (!m) otherAgents.set(opts, (m = new Map()));
  let a = m.get(url.host);
  if (!a) m.set(url.host, (a = agentFor(url.host, opts)));
  return a;
}

export class RegistryClient {
  /** `https://host` or, for plain-HTTP registries (or after a --tls-verify=false fallback), `http://host`. */
  baseUrl: string;
  readonly host: string;
  private agent: http.Agent;
  /** `httpFallbackRegistries`: may still switch to plain HTTP (until a request over HTTPS got an answer). */
  private mayFallBack: boolean;
  private readonly retryPolicy: ResolvedRetry;
  /** Time limits of every request (RegistryOptions.timeouts over the defaults). */
  readonly timeouts: Timeouts;
  private creds?: Promise<ResolvedCredentials>;
  private challenge?: Challenge;
  private readonly tokens = new Map<string, CachedToken>();

  constructor(
    /** Registry as in references (`docker.io`, `host:port`). */
    readonly registry: string,
    private readonly opts: RegistryOptions,
    private readonly progress: ProgressListener,
  ) {
    this.host = apiHost(registry);
    const plain = hostListed(opts.plainHttpRegistries, registry);
    this.baseUrl = `${plain ? 'http' : 'https'}://${this.host}`;
    this.agent = agentFor(registry, opts, plain);
    this.mayFallBack = !plain && hostListed(opts.httpFallbackRegistries, registry);
    this.retryPolicy = resolveRetry(opts.retry);
    this.timeouts = resolveTimeouts(opts.timeouts);
  }

  /** Aborts every request of this client (RegistryOptions.signal). */
  get signal(): AbortSignal | undefined {
    return this.opts.signal;
  }

  /** Throw the ABORTED error when the signal has fired. */
  throwIfAborted(): void {
    if (this.opts.signal?.aborted) throw abortError(this.opts.signal, this.registry);
  }

  close(): void {
    this.agent.destroy();
  }

  get retry(): ResolvedRetry {
    return this.retryPolicy;
  }

  /** Credentials, resolved once; their source is reported as an info event, never the secret. */
  credentials(): Promise<ResolvedCredentials> {
    if (!this.creds) {
      this.creds = resolveCredentials(this.registry, this.opts).then((r) => {
        this.progress({ type: 'info', message: `credentials for ${this.registry}: ${r.source}` });
        return r;
      });
    }
    return this.creds;
  }

  private scopeKey(scopes: string[]): string {
    return [...scopes].sort().join(' ');
  }

  private async authorization(scopes: string[]): Promise<string | undefined> {
    if (!this.challenge) return undefined;
    if (this.challenge.scheme === 'basic') {
      const { credentials } = await this.credentials();
      return credentials ? basicHeader(credentials.username, credentials.password) : undefined;
    }
    if (this.challenge.scheme === 'bearer') {
      const t = this.tokens.get(this.scopeKey(scopes));
      if (t && t.expiresAt > Date.now()) return `Bearer ${t.token}`;
      return `Bearer ${await this.fetchToken(scopes)}`;
    }
    return undefined;
  }

  /** GET the token endpoint named by the challenge (Gitea answers GET only, with `{"token"}`). */
  private async fetchToken(scopes: string[]): Promise<string> {
    const ch = this.challenge!;
    const realm = ch.params.realm;
    if (!realm) {
      throw new OcistackError(`${this.registry} asked for a bearer token without a realm`, { code: 'REGISTRY_AUTH', registry: this.registry, hint: 'the registry is misconfigured; check its auth settings' });
    }
    const url = new URL(realm);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    const wanted = scopes.length ? scopes : ch.params.scope ? [ch.params.scope] : [];
    for (const s of wanted) url.searchParams.append('scope', s);
    const { credentials, source } = await this.credentials();
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: 'application/json' };
    if (credentials) headers.Authorization = basicHeader(credentials.username, credentials.password);
    let res: Response | undefined;
    for (let attempt = 0; ; attempt++) {
      this.throwIfAborted();
      try {
        res = await this.getFollowingRedirects(url.href, headers);
      } catch (e) {
        if (e instanceof OcistackError) throw e;
        if (isTlsError(e)) throw tlsError(url.host, e, this.opts);
        if (attempt + 1 >= this.retryPolicy.attempts) throw networkError(this.registry, e, { timeouts: this.timeouts });
        await sleep(backoffDelay(attempt, this.retryPolicy), this.opts.signal);
        continue;
      }
      if (isRetryableStatus(res.status) && attempt + 1 < this.retryPolicy.attempts) {
        await res.arrayBuffer().catch(() => undefined);
        await sleep(retryAfterMs(res.headers.get('retry-after')) ?? backoffDelay(attempt, this.retryPolicy), this.opts.signal);
        continue;
      }
      break;
    }
    if (res.status === 401 || res.status === 403) {
      throw new OcistackError(
        credentials ? `${this.registry} rejected the credentials (from ${source})` : `${this.registry} requires credentials`,
        {
          code: 'REGISTRY_AUTH',
          registry: this.registry,
          hint: credentials
            ? `check the user name and password, or run "ocistack login ${this.registry}"`
            : `run "ocistack login ${this.registry}"; --creds and OCISTACK_USERNAME/OCISTACK_PASSWORD count only for the image pushed, pulled or copied to, never for a base image`,
        },
      );
    }
    if (!res.ok) {
      throw new OcistackError(`token request to ${url.origin}${url.pathname} failed: HTTP ${res.status}`, {
        code: 'REGISTRY_AUTH',
        registry: this.registry,
        hint: 'check that the registry and its token service are up',
      });
    }
    const body = (await res.json(BODY_LIMITS.token, 'token answer')) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token || body.access_token;
    if (!token) {
      throw new OcistackError(`token service of ${this.registry} answered without a token`, { code: 'REGISTRY_AUTH', registry: this.registry, hint: 'the token service must answer {"token": ...} or {"access_token": ...}' });
    }
    const life = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    // Renew a little early so a long upload does not start with a token about to expire.
    this.tokens.set(this.scopeKey(scopes), { token, expiresAt: Date.now() + life * 900 });
    return token;
  }

  /**
   * Send a request; answers 401 by authenticating from the challenge (once
   * more if a cached token stopped working); retries transient failures;
   * follows redirects, dropping Authorization when the host changes.
   * Returns the final response whatever its status: callers judge it.
   */
  async request(spec: RequestSpec): Promise<Response> {
    let reauthenticated = false;
    let authenticatedOnce = false;
    const retry = spec.retry ?? true;
    for (let attempt = 0; ; ) {
      this.throwIfAborted();
      let res: Response;
      let usedToken = false;
      try {
        const auth = await this.authorization(spec.scopes);
        usedToken = auth !== undefined;
        res = await this.send(spec, auth);
      } catch (e) {
        if (e instanceof OcistackError) throw e;
        if (this.mayFallBack && canFallBack(e)) {
          this.fallBackToHttp(e);
          continue;
        }
        if (isTlsError(e)) throw tlsError(this.registry, e, this.opts);
        if (!retry || attempt + 1 >= this.retryPolicy.attempts) throw networkError(this.registry, e, { what: spec.what, timeouts: this.timeouts, tries: attempt + 1 });
        await sleep(backoffDelay(attempt++, this.retryPolicy), this.opts.signal);
        continue;
      }
      this.mayFallBack = false;
      if (res.status === 401) {
        const challenges = parseChallenges(res.headers.get('www-authenticate'));
        const ch = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
        const { credentials } = await this.credentials();
        // First 401: learn the scheme. A 401 with a token we had: it expired or was revoked; fetch a new one once.
        const canRetry = ch && (!authenticatedOnce || (usedToken && !reauthenticated && ch.scheme === 'bearer'));
        if (canRetry && (ch.scheme === 'bearer' || credentials)) {
          if (authenticatedOnce) reauthenticated = true;
          authenticatedOnce = true;
          this.challenge = ch;
          this.tokens.delete(this.scopeKey(spec.scopes));
          await res.arrayBuffer().catch(() => undefined);
          continue;
        }
        return res;
      }
      if (retry && isRetryableStatus(res.status) && attempt + 1 < this.retryPolicy.attempts) {
        const wait = retryAfterMs(res.headers.get('retry-after')) ?? backoffDelay(attempt, this.retryPolicy);
        attempt++;
        await res.arrayBuffer().catch(() => undefined);
        await sleep(wait, this.opts.signal);
        continue;
      }
      return res;
    }
  }

  /**
   * skopeo's `--tls-verify=false`: HTTPS failed before any answer (a plain-HTTP
   * server, or no TLS listener), so talk plain HTTP to this registry from now on.
   */
  private fallBackToHttp(e: unknown): void {
    this.mayFallBack = false;
    this.agent.destroy();
    this.agent = agentFor(this.registry, this.opts, true);
    this.baseUrl = `http://${this.host}`;
    const why = isPlainHttpAnswer(e) ? 'it answered plain HTTP' : `HTTPS failed (${errorCode(e) ?? (e as Error)?.message})`;
    this.progress({ type: 'info', message: `${this.registry}: ${why}; using plain HTTP (--tls-verify=false)` });
  }

  /** Absolute URL for a path or an upload Location (which may be relative). */
  resolve(url: string): string {
    return new URL(url, this.baseUrl + '/').href;
  }

  /** GET with redirects followed (token realms); Authorization is dropped once the host changes. */
  private async getFollowingRedirects(start: string, headers: Record<string, string>): Promise<Response> {
    let url = start;
    let h = headers;
    for (let hop = 0; hop < 10; hop++) {
      const u = new URL(url);
      const same = u.host === this.host;
      const res = await httpRequest(url, { headers: h, agent: same ? this.agent : agentForOther(u, this.opts), timeouts: this.timeouts, signal: this.opts.signal, peer: same ? this.registry : u.host });
      const loc = res.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(res.status) || !loc) return res;
      await res.arrayBuffer().catch(() => undefined);
      const next = new URL(loc, url);
      if (next.host !== u.host) {
        const { Authorization: _drop, ...rest } = h;
        h = rest;
      }
      url = next.href;
    }
    throw new OcistackError(`too many redirects from the token service of ${this.registry}`, { code: 'REGISTRY_AUTH', registry: this.registry, hint: 'check the registry URL and proxy configuration' });
  }

  private async send(spec: RequestSpec, auth: string | undefined): Promise<Response> {
    let url = this.resolve(spec.url);
    let method: string = spec.method;
    let body = spec.body?.();
    for (let hop = 0; hop < 10; hop++) {
      const u = new URL(url);
      const sameHost = u.host === this.host || (u.host === this.host.replace(/:443$/, '') && u.protocol === 'https:');
      const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...spec.headers };
      if (auth && sameHost) headers.Authorization = auth;
      const res = await httpRequest(url, { method, headers, body, agent: sameHost ? this.agent : agentForOther(u, this.opts), timeouts: this.timeouts, signal: this.opts.signal, peer: sameHost ? this.registry : u.host });
      if (process.env.OCISTACK_DEBUG_HTTP) process.stderr.write(`[http] +${Math.round(performance.now())}ms ${method} ${u.pathname}${u.search ? `?${[...new Set(u.searchParams.keys())].join('&')}` : ''} ${spec.headers?.['Content-Range'] ?? ''} -> ${res.status} ${res.headers.get('range') ?? ''}\n`);
      if (![301, 302, 303, 307, 308].includes(res.status)) return res;
      const loc = res.headers.get('location');
      if (!loc) return res;
      await res.arrayBuffer().catch(() => undefined);
      url = new URL(loc, url).href;
      if (res.status === 303) {
        method = 'GET';
        body = undefined;
      } else if (body !== undefined) {
        body = spec.body?.();
      }
    }
    throw new OcistackError(`too many redirects from ${this.registry}`, { code: 'REGISTRY_HTTP', registry: this.registry, hint: 'check the registry URL and proxy configuration' });
  }
}

/** Failures after which --tls-verify=false tries plain HTTP (containers/image falls back after any failed HTTPS ping). */
function canFallBack(e: unknown): boolean {
  if (e instanceof StallError) return e.phase === 'tls';
  return isTlsError(e) || ['ECONNREFUSED', 'ECONNRESET', 'EPROTO', 'EPIPE'].includes(errorCode(e) ?? '');
}

export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** RegistryOptions.timeouts over {@link DEFAULT_TIMEOUTS}; zero or negative values are refused. */
export function resolveTimeouts(t: RegistryOptions['timeouts'] = {}): Timeouts {
  const out = { ...DEFAULT_TIMEOUTS };
  for (const k of ['connectMs', 'tlsMs', 'idleMs'] as const) {
    const v = t[k];
    if (v === undefined) continue;
    if (!Number.isFinite(v) || v <= 0) {
      throw new OcistackError(`registry timeout ${k} must be a positive number of milliseconds, got ${v}`, { code: 'USAGE', exitCode: 2, hint: 'write e.g. --timeout 30s' });
    }
    out[k] = Math.round(v);
  }
  return out;
}

export interface NetworkErrorContext {
  /** What was under way, e.g. `download of blob sha256:…` (names a stalled transfer). */
  what?: string;
  timeouts?: Timeouts;
  tries?: number;
}

/**
 * The error for a network failure after the retries: a stall (code
 * REGISTRY_TIMEOUT) says what stalled and for how long; anything else is
 * REGISTRY_UNREACHABLE.
 */
export function networkError(registry: string, e: unknown, ctx: NetworkErrorContext = {}): OcistackError {
  if (e instanceof StallError) {
    let msg = e.message;
    if (ctx.what && (e.phase === 'body' || e.phase === 'upload')) {
      msg = e.phase === 'body' ? `${ctx.what} from ${e.peer} stalled: no data for ${formatDuration(e.ms)}` : `${ctx.what} to ${e.peer} stalled: no progress for ${formatDuration(e.ms)}`;
    }
    if (ctx.tries && ctx.tries > 1) msg += ` (${ctx.tries} tries)`;
    return new OcistackError(msg, {
      code: 'REGISTRY_TIMEOUT',
      registry,
      hint: `check that ${e.peer} is up and not overloaded; a slow link may need a longer --timeout (now ${formatDuration(e.ms)})`,
      cause: e,
    });
  }
  const msg = (e as Error)?.message ?? String(e);
  return new OcistackError(`cannot reach ${registry}: ${msg}`, {
    code: 'REGISTRY_UNREACHABLE',
    registry,
    hint: `check that ${registry} is up and reachable from here (host name, port, proxy)`,
    cause: e,
  });
}

/** An error for an unexpected registry answer, with the registry's own error text. */
export async function responseError(registry: string, res: Response, what: string): Promise<OcistackError> {
  let detail = '';
  try {
    const text = await res.text(BODY_LIMITS.error, 'error answer');
    try {
      const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      detail = (j.errors ?? []).map((x) => [x.code, x.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      detail = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
    }
  } catch {
    /* body unreadable: status is enough */
  }
  const msg = `${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`;
  switch (res.status) {
    case 401:
      return new OcistackError(msg, { code: 'REGISTRY_AUTH', registry, hint: `run "ocistack login ${registry}"; --creds and OCISTACK_USERNAME/OCISTACK_PASSWORD count only for the image pushed, pulled or copied to, never for a base image` });
    case 403:
      return new OcistackError(msg, { code: 'REGISTRY_DENIED', registry, hint: 'the user lacks permission on this repository; on Gitea the owner must be your user or an organisation you can write to' });
    case 404:
      return new OcistackError(msg, { code: 'NOT_FOUND', registry, hint: 'check the repository name and tag' });
    case 413:
      return new OcistackError(msg, { code: 'REGISTRY_HTTP', registry, hint: 'a proxy limits the request body size: lower --chunk-size (e.g. 4m) or raise the proxy limit' });
    default:
      return new OcistackError(msg, { code: 'REGISTRY_HTTP', registry, hint: 'retry later; if it persists check the registry logs' });
  }
}
