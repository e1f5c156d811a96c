/**
 * A small plain-HTTP proxy in front of a plain-HTTP test registry, for
 * faults nginx cannot make: cutting a blob download off after some bytes
 * (to test Range resume), and redirecting blob downloads to a second
 * listener on another host name (to test that Authorization is not sent
 * across hosts). Records every request's method, path (with its query) and
 * the headers that matter (never their secret values, only whether they were
 * present), and what its body was (length and sha256, counted as it passed),
 * so tests can check what a client sent, not only that it worked.
 */
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  listener: 'main' | 'redirect';
  method: string;
  path: string;
  range?: string;
  hadAuthorization: boolean;
  /** Request headers as sent (absent when the client sent none). */
  contentRange?: string;
  contentLength?: string;
  /** Body bytes received and their sha256 (hex); final once `bodyDone` is true. */
  bodyBytes: number;
  bodySha256?: string;
  bodyDone: boolean;
  status?: number;
}

export interface HttpProxyOptions {
  /** `127.0.0.1:PORT` of the plain-HTTP registry. */
  upstream: string;
  /** Cut the first N blob GETs (without Range) off after this many body bytes. */
  cutBlobAfterBytes?: number;
  cutTimes?: number;
  /** Answer blob GETs on the main listener with 307 to the redirect listener (on 127.0.0.1, a different host than localhost). */
  redirectBlobs?: boolean;
  /** Authorization the redirect listener adds upstream (like a pre-signed URL would carry its own). */
  upstreamAuthorization?: string;
  /** Query string (without `?`) the blob redirects carry, like a pre-signed storage URL's signature. */
  redirectQuery?: string;
  /**
   * Answer the n-th request with this method (1-based) with 401 and the last
   * challenge the registry sent, as a registry does when a token expired or
   * was revoked mid-push.
   */
  unauthorize?: { method: string; nth: number };
}

export interface HttpProxy {
  /** `localhost:PORT` of the main listener. */
  host: string;
  seen: SeenRequest[];
  stop(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[a-f0-9]{64}$/;

export async function startHttpProxy(opts: HttpProxyOptions): Promise<HttpProxy> {
  const seen: SeenRequest[] = [];
  let cutsLeft = opts.cutTimes ?? 1;
  let redirectPort = 0;
  let lastChallenge: string | undefined;
  let methodCount = 0;

  const forward = (listener: SeenRequest['listener'], req: IncomingMessage, res: ServerResponse, entry: SeenRequest) => {
    // Keep the client's Host: the registry builds upload Locations from it, as behind a real proxy.
    const headers = { ...req.headers };
    if (listener === 'redirect' && opts.upstreamAuthorization) headers.authorization = opts.upstreamAuthorization;
    const up = request(`http://${opts.upstream}${req.url}`, { method: req.method, headers }, (ur) => {
      entry.status = ur.statusCode;
      const ch = ur.headers['www-authenticate'];
      if (typeof ch === 'string') lastChallenge = ch;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      const length = Number(ur.headers['content-length'] ?? 0);
      const cut =
        listener === 'main' && req.method === 'GET' && BLOB_GET.test(req.url ?? '') && !req.headers.range &&
        opts.cutBlobAfterBytes !== undefined && cutsLeft > 0 && ur.statusCode === 200 && length > opts.cutBlobAfterBytes;
      if (!cut) {
        ur.pipe(res);
        return;
      }
      cutsLeft--;
      let sent = 0;
      ur.on('data', (chunk: Buffer) => {
        if (sent >= opts.cutBlobAfterBytes!) return;
        const part = chunk.subarray(0, opts.cutBlobAfterBytes! - sent);
        sent += part.length;
        res.write(part);
        if (sent >= opts.cutBlobAfterBytes!) {
          // Let the bytes out, then break the connection mid-body.
          setTimeout(() => {
            ur.destroy();
            res.socket?.destroy();
          }, 50);
        }
      });
    });
    up.on('error', () => {
      res.socket?.destroy();
    });
    req.pipe(up);
  };

  const handler = (listener: SeenRequest['listener']) => (req: IncomingMessage, res: ServerResponse) => {
    const entry: SeenRequest = {
      listener,
      method: req.method ?? '',
      path: req.url ?? '',
      range: req.headers.range,
      hadAuthorization: !!req.headers.authorization,
      contentRange: req.headers['content-range'],
      contentLength: req.headers['content-length'],
      bodyBytes: 0,
      bodyDone: false,
    };
    seen.push(entry);
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => {
      entry.bodyBytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => {
      entry.bodySha256 = hash.digest('hex');
      entry.bodyDone = true;
    });
    if (listener === 'main' && opts.unauthorize && req.method === opts.unauthorize.method && ++methodCount === opts.unauthorize.nth) {
      entry.status = 401;
      req.resume();
      res.writeHead(401, { 'Content-Type': 'application/json', ...(lastChallenge ? { 'WWW-Authenticate': lastChallenge } : {}) });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'token expired' }] }));
      return;
    }
    if (listener === 'main' && opts.redirectBlobs && req.method === 'GET' && BLOB_GET.test(req.url ?? '')) {
      entry.status = 307;
      req.resume();
      res.writeHead(307, { Location: `http://127.0.0.1:${redirectPort}${req.url}${opts.redirectQuery ? `?${opts.redirectQuery}` : ''}` });
      res.end();
      return;
    }
    forward(listener, req, res, entry);
  };

  const main = createServer(handler('main'));
  const redirect = createServer(handler('redirect'));
  const mainPort = await listen(main);
  redirectPort = await listen(redirect);
  return {
    host: `localhost:${mainPort}`,
    seen,
    stop: async () => {
      for (const s of [main, redirect]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
