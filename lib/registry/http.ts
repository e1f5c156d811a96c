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
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { pipeline, type Readable } from 'node:stream';

export type RequestBody = Buffer | Uint8Array | string | Readable;

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  agent?: http.Agent;
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
  ) {
    this.status = message.statusCode ?? 0;
    this.headers = new HttpHeaders(message.headers);
    this.body = body;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The whole body (for small answers: errors, manifests, tokens). */
  async arrayBuffer(): Promise<ArrayBuffer> {
    const chunks: Buffer[] = [];
    for await (const c of this.body) chunks.push(c as Buffer);
    const all = Buffer.concat(chunks);
    return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    return Buffer.from(await this.arrayBuffer()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

/**
 * A response whose body undoes a Content-Encoding, as fetch does. Registries
 * rarely use one (we send no Accept-Encoding), so zlib is loaded only then.
 */
async function response(url: string, message: http.IncomingMessage): Promise<HttpResponse> {
  const enc = (message.headers['content-encoding'] ?? '').trim().toLowerCase();
  if (enc !== 'gzip' && enc !== 'x-gzip' && enc !== 'deflate' && enc !== 'br') return new HttpResponse(url, message);
  const zlib = await import('node:zlib');
  const decoder = enc === 'deflate' ? zlib.createInflate() : enc === 'br' ? zlib.createBrotliDecompress() : zlib.createGunzip();
  pipeline(message, decoder, () => undefined);
  return new HttpResponse(url, message, decoder);
}

/**
 * Send one request; resolves with the response as soon as its head arrives
 * (redirects are the caller's business). Network and TLS errors reject with
 * Node's own error (its `code`, e.g. ECONNREFUSED or
 * DEPTH_ZERO_SELF_SIGNED_CERT, intact for the caller to classify).
 */
export function httpRequest(url: string, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { ...opts.headers };
    const body = opts.body;
    const isStream = body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array);
    if (body !== undefined && !isStream && !hasHeader(headers, 'content-length')) {
      headers['Content-Length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
    }
    let answered = false;
    const req = mod.request(u, { method: opts.method ?? 'GET', headers, agent: opts.agent }, (message) => {
      answered = true;
      response(url, message).then(resolve, reject);
    });
    // After the answer, a request error (e.g. the server stopped reading an
    // upload it refused with 413) is not the caller's failure: the response is.
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    if (body === undefined) req.end();
    else if (!isStream) req.end(body);
    else
      pipeline(body as Readable, req, (e) => {
        if (e && !answered) reject(e);
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
