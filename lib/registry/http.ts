/**
 * The registry client's HTTP transport: one request over node:http(s) with
 * the caller's agent, answered by a small fetch-like {@link HttpResponse}.
 *
 * Why not node-fetch: its response body is the socket's message piped
 * through an extra PassThrough, and reading it with `for await` costs a few
 * promises per 16 KiB TLS record. Profiling a 100 MiB pull in a fresh process
 * (where that JavaScript is not yet optimised) put node-fetch's body path at
 * ~150 ms of CPU more than reading `http.IncomingMessage` with 'data' events,
 * and importing node-fetch costs ~30 ms of every CLI start.
 *
 * Every request is bounded in time (connect, TLS handshake, and an idle
 * limit on the socket while waiting for the answer, uploading or reading the
 * body: see {@link Timeouts}) and can be cancelled by an AbortSignal. Small
 * bodies are read with a size limit, also when they come chunked.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import { pipeline, type Readable } from 'node:stream';
import { OcistackError } from '../errors.js';
import { interruptedError } from '../abort.js';

export type RequestBody = Buffer | Uint8Array | string | Readable;

/**
 * Time limits of one request, ms. `connectMs` and `tlsMs` are Docker's and
 * containers/image's dialer (30 s) and TLS handshake (10 s) timeouts. Those
 * transports have no idle limit (a server that accepts and never answers
 * hangs them); ours is `idleMs`: the longest the socket may see no traffic in
 * either direction once connected: waiting for the answer's head, while an
 * upload makes no progress, or between two pieces of a body.
 */
export interface Timeouts {
  connectMs: number;
  tlsMs: number;
  idleMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = Object.freeze({ connectMs: 30_000, tlsMs: 10_000, idleMs: 30_000 });

/** Size limits of bodies read whole (containers/image and containerd use the same orders). */
export const BODY_LIMITS = Object.freeze({
  /** Manifests and indexes: the distribution spec's 4 MiB, as containerd. */
  manifest: 4 * 1024 * 1024,
  /** Token service answers (containers/image: 1 MiB). */
  token: 1024 * 1024,
  /** Error bodies: only their first messages are shown. */
  error: 64 * 1024,
  /** Anything else read whole (answers that are drained before a retry). */
  other: 1024 * 1024,
});

/** Where a request stalled. */
export type StallPhase = 'connect' | 'tls' | 'answer' | 'upload' | 'body';

/** Formats ms for messages: `300ms`, `30s`, `1.5s`, `2m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 100) / 10}s`;
}

/**
 * A request that hit one of its time limits. A plain Error (with a code) so
 * the client's retry loops treat it as the network error it is.
 */
export class StallError extends Error {
  readonly code = 'ERR_OCISTACK_STALL';
  constructor(
    readonly phase: StallPhase,
    readonly ms: number,
    /** host:port that stalled. */
    readonly peer: string,
  ) {
    super(stallText(phase, ms, peer));
    this.name = 'StallError';
  }
}

function stallText(phase: StallPhase, ms: number, peer: string): string {
  const d = formatDuration(ms);
  switch (phase) {
    case 'connect':
      return `could not connect to ${peer} within ${d}`;
    case 'tls':
      return `TLS handshake with ${peer} did not finish within ${d}`;
    case 'answer':
      return `no answer from ${peer} within ${d} after the request`;
    case 'upload':
      return `upload to ${peer} stalled: no progress for ${d}`;
    case 'body':
      return `answer from ${peer} stalled: no data for ${d}`;
  }
}

/**
 * The error for an aborted signal: its reason when that is already an
 * OcistackError (the caller said why), else lib/abort.ts's ABORTED error,
 * naming the registry whose request was cut.
 */
export function abortError(signal: AbortSignal, registry?: string): OcistackError {
  const r: unknown = signal.reason;
  if (r instanceof OcistackError) return r;
  const e = interruptedError(registry ? `request to ${registry} aborted` : 'the operation was cancelled');
  return registry ? new OcistackError(e.message, { code: e.code, hint: e.hint, registry, cause: r }) : e;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  agent?: http.Agent;
  /** Default {@link DEFAULT_TIMEOUTS}. */
  timeouts?: Timeouts;
  /** Aborting destroys the request (and its body) with an ABORTED error. */
  signal?: AbortSignal;
  /** The registry (or host) named in errors; default the URL's host. */
  peer?: string;
}

/** Header access like fetch's `Headers.get` (case-insensitive; repeated headers joined by ", "). */
export class HttpHeaders {
  constructor(private readonly raw: http.IncomingHttpHeaders) {}
  get(name: string): string | null {
    const v = this.raw[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(', ') : v;
  }
  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }
}

/** A response: status, headers and a body that is read at most once. */
export class HttpResponse {
  readonly status: number;
  readonly headers: HttpHeaders;
  /** The body as it arrives (decoded when the server used Content-Encoding). */
  readonly body: Readable;

  constructor(
    /** The URL that answered. */
    readonly url: string,
    message: http.IncomingMessage,
    /** The body to read instead of `message` (a decoder of it). */
    body: Readable = message,
    /** Registry or host named in errors. */
    readonly peer: string = new URL(url).host,
  ) {
    this.status = message.statusCode ?? 0;
    this.headers = new HttpHeaders(message.headers);
    this.body = body;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /**
   * The whole body, for small answers (errors, manifests, tokens), at most
   * `limit` bytes: a longer one, announced or chunked, is an error naming
   * the registry and `what`, and its connection is dropped.
   */
  async arrayBuffer(limit: number = BODY_LIMITS.other, what = 'answer'): Promise<ArrayBuffer> {
    const tooLarge = () => {
      this.body.destroy();
      return new OcistackError(`${what} from ${this.peer} is larger than ${formatBytes(limit)}`, {
        code: 'RESPONSE_TOO_LARGE',
        registry: this.peer,
        hint: `${this.peer} sent far more than a registry sends here; check the registry URL and any proxy in between`,
      });
    };
    const announced = Number(this.headers.get('content-length') ?? '');
    if (Number.isFinite(announced) && announced > limit) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of this.body) {
      size += (c as Buffer).length;
      if (size > limit) throw tooLarge();
      chunks.push(c as Buffer);
    }
    const all = Buffer.concat(chunks);
    return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  }

  async text(limit?: number, what?: string): Promise<string> {
    return Buffer.from(await this.arrayBuffer(limit, what)).toString('utf8');
  }

  async json(limit?: number, what?: string): Promise<unknown> {
    return JSON.parse(await this.text(limit, what));
  }
}

function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/**
 * A response whose body undoes a Content-Encoding, as fetch does. Registries
 * rarely use one (we send no Accept-Encoding), so zlib is loaded only then.
 */
async function response(url: string, message: http.IncomingMessage, peer: string): Promise<HttpResponse> {
  const enc = (message.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (enc !== 'gzip' && enc !== 'x-gzip' && enc !== 'deflate' && enc !== 'br') return new HttpResponse(url, message, message, peer);
  const zlib = await import('node:zlib');
  const decoder = enc === 'deflate' ? zlib.createInflate() : enc === 'br' ? zlib.createBrotliDecompress() : zlib.createGunzip();
  pipeline(message, decoder, () => undefined);
  return new HttpResponse(url, message, decoder, peer);
}

/**
 * Send one request; resolves with the response as soon as its head arrives
 * (redirects are the caller's business). Network and TLS errors reject with
 * Node's own error (its `code`, e.g. ECONNREFUSED or
 * DEPTH_ZERO_SELF_SIGNED_CERT, intact for the caller to classify); a time
 * limit reached rejects (or, once answered, fails the body) with a
 * {@link StallError}; an aborted signal with an ABORTED OcistackError.
 */
export function httpRequest(url: string, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
  const u = new URL(url);
  const peer = opts.peer ?? u.host;
  const signal = opts.signal;
  if (signal?.aborted) return Promise.reject(abortError(signal, peer));
  const limits = opts.timeouts ?? DEFAULT_TIMEOUTS;
  return new Promise((resolve, reject) => {
    const mod = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...opts.headers };
    const body = opts.body;
    const isStream = body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array);
    if (body !== undefined && !isStream && !hasHeader(headers, 'content-length')) {
      headers['Content-Length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    }
    let answered = false;
    let message: http.IncomingMessage | undefined;
    /** The whole request has been handed to the OS: from now on silence means "no answer". */
    let sent = false;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    let idleSocket: Socket | undefined;

    const cleanup = () => {
      finished = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      // Only our listener goes: the socket may already serve the agent's next request.
      idleSocket?.off('timeout', onIdle);
      idleSocket = undefined;
      signal?.removeEventListener('abort', onAbort);
    };
    /** Fail the request, or once answered its body, with `err`. */
    const fail = (err: Error) => {
      if (finished) return;
      cleanup();
      if (message) message.destroy(err);
      req.destroy(err);
      if (!answered) reject(err);
    };
    const onAbort = () => fail(abortError(signal!, peer));
    const onIdle = () => {
      if (finished) return;
      // A body that arrived whole but is not read yet is not a stall.
      if (message?.complete) {
        cleanup();
        return;
      }
      fail(new StallError(answered ? 'body' : sent ? 'answer' : 'upload', limits.idleMs, peer));
    };
    /** Idle limit from here on: no traffic either way for idleMs. */
    const watchIdle = (socket: Socket) => {
      if (finished) return;
      idleSocket = socket;
      socket.setTimeout(limits.idleMs);
      socket.on('timeout', onIdle);
    };
    const startTimer = (phase: StallPhase, ms: number) => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => fail(new StallError(phase, ms, peer)), ms);
    };

    const req = mod.request(u, { method: opts.method ?? 'GET', headers, agent: opts.agent }, (m) => {
      answered = true;
      message = m;
      m.once('end', cleanup);
      m.once('close', cleanup);
      response(url, m, peer).then(resolve, (e) => {
        cleanup();
        reject(e);
      });
    });
    req.on('socket', (socket: Socket) => {
      if (finished) return;
      if (req.reusedSocket || !socket.connecting) {
        watchIdle(socket);
        return;
      }
      const tlsSocket = u.protocol === 'https:';
      startTimer('connect', limits.connectMs);
      socket.once('connect', () => {
        if (finished) return;
        if (!tlsSocket) {
          clearTimeout(timer);
          watchIdle(socket);
          return;
        }
        startTimer('tls', limits.tlsMs);
        socket.once('secureConnect', () => {
          if (finished) return;
          clearTimeout(timer);
          watchIdle(socket);
        });
      });
    });
    req.once('finish', () => {
      sent = true;
    });
    // After the answer, a request error (e.g. the server stopped reading an
    // upload it refused with 413) is not the caller's failure: the response is.
    req.on('error', (e) => {
      if (!answered) {
        cleanup();
        reject(e);
      }
    });
    req.once('close', () => {
      if (!answered) cleanup();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    if (body === undefined) req.end();
    else if (!isStream) req.end(body);
    else
      pipeline(body as Readable, req, (e) => {
        if (e && !answered) {
          cleanup();
          reject(e);
        }
      });
  });
}

/**
 * Hand each chunk of `body` to `onChunk` as it arrives ('data' events: the
 * cheapest way through Node's streams), pausing while the promise `onChunk`
 * may return is pending. Resolves at the end of the body; rejects when the
 * connection breaks first or `onChunk` throws.
 */
export function forEachChunk(body: Readable, onChunk: (chunk: Buffer) => Promise<void> | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      body.destroy();
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      if (settled) return;
      let wait: Promise<void> | undefined;
      try {
        wait = onChunk(chunk);
      } catch (e) {
        fail(e);
        return;
      }
      if (wait) {
        body.pause();
        wait.then(() => {
          if (!settled) body.resume();
        }, fail);
      }
    };
    body.on('data', onData);
    body.once('end', () => {
      settled = true;
      resolve();
    });
    body.once('error', fail);
    // A close without 'end' or 'error' is a break too (never a silent short body).
    body.once('close', () => fail(Object.assign(new Error('connection closed before the body ended'), { code: 'ECONNRESET' })));
  });
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}
