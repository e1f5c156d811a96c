/**
 * Misbehaving servers on 127.0.0.1 for the transport's fault tests: each
 * does one wrong thing a real registry, proxy or firewall can do (accept a
 * TCP connection and never answer, finish the TLS handshake and fall silent,
 * stop a body halfway, never read an upload, send an endless chunked body).
 * They count what they saw, so a test can assert retries and resumes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { testCerts } from './certs.js';

export interface FaultServer {
  /** `127.0.0.1:PORT`, the registry name to use in references. */
  host: string;
  /** Connections accepted (TCP; TLS servers: handshakes finished). */
  connections(): number;
  close(): Promise<void>;
}

function closer(server: net.Server, sockets: Set<net.Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

/** (a) Accepts TCP connections and never sends a byte (nor starts TLS). */
export async function startSilentTcp(): Promise<FaultServer> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((s) => {
    count++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return { host: `127.0.0.1:${port}`, connections: () => count, close: closer(server, sockets) };
}

/**
 * A listener whose connects never complete: a child process listens with a
 * backlog of 1 and is stopped (SIGSTOP), two filler connections fill the
 * kernel's accept queue, and from then on the kernel drops every SYN, so a
 * connect hangs exactly as towards a host behind a dropping firewall.
 */
export async function startUnconnectable(): Promise<FaultServer> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', `const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
  });
  child.kill('SIGSTOP');
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const f = net.connect(port, '127.0.0.1');
    f.on('error', () => undefined);
    fillers.push(f);
  }
  await new Promise((r) => setTimeout(r, 300));
  return {
    host: `127.0.0.1:${port}`,
    connections: () => 0,
    close: async () => {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
      child.kill('SIGCONT');
    },
  };
}

/** (b) Completes the TLS handshake (the test certificate) and then never answers. */
export async function startSilentTls(): Promise<FaultServer> {
  const certs = await testCerts();
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = tls.createServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, (s) => {
    count++;
    s.on('error', () => undefined);
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  return { host: `127.0.0.1:${port}`, connections: () => count, close: closer(server, sockets) };
}

export interface SeenRequest {
  method: string;
  url: string;
  range?: string;
}

export interface StallingRegistry extends FaultServer {
  /** Repository `faults/half`, tag `1`: its layer's body stops halfway (and a Range resume stops again). */
  halfRef: string;
  layerDigest: string;
  /** Repository `faults/endless`, tag `1`: the manifest answer is chunked and never ends. */
  endlessManifestRef: string;
  /** Repository `faults/gone`, tag `1`: 404 with an endless chunked error body. */
  endlessErrorRef: string;
  /** Repository `faults/token`: 401 Bearer whose token realm answers an endless chunked body. */
  tokenRef: string;
  /** Repository `faults/upload`: uploads are accepted (202); one of 1 MiB or more is then never read. */
  uploadRepo: string;
  requests(): SeenRequest[];
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Writes 64 KiB chunks until the client goes away. */
function endless(res: ServerResponse, status: number, type: string): void {
  res.writeHead(status, { 'Content-Type': type });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  chunk.write('{"schemaVersion":2,"padding":"');
  const more = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', more);
  };
  res.on('error', () => undefined);
  more();
}

/** (c) An HTTPS registry-like server whose answers break in the ways listed on {@link StallingRegistry}. */
export async function startStallingRegistry(): Promise<StallingRegistry> {
  const certs = await testCerts();
  const layer = randomBytes(256 * 1024);
  const layerDigest = sha256(layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] }, config: {} }));
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const seen: SeenRequest[] = [];
  const sockets = new Set<net.Socket>();
  let count = 0;
  let port = 0;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    seen.push({ method: req.method ?? 'GET', url, range: req.headers.range });
    res.on('error', () => undefined);
    if (url === '/v2/' || url === '/v2') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    if (url.startsWith('/token')) return endless(res, 200, 'application/json');
    if (url.startsWith('/v2/faults/token/')) {
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="https://127.0.0.1:${port}/token",service="faults"` });
      return void res.end();
    }
    if (url === '/v2/faults/half/manifests/1') {
      return void res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': manifest.length }).end(manifest);
    }
    if (url === `/v2/faults/half/blobs/${configDigest}`) return void res.writeHead(200, { 'Content-Length': config.length }).end(config);
    if (url === `/v2/faults/half/blobs/${layerDigest}`) {
      // Half the body, then silence; a resume gets a few bytes more, then silence again.
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      if (m) res.writeHead(206, { 'Content-Length': layer.length - start, 'Content-Range': `bytes ${start}-${layer.length - 1}/${layer.length}` });
      else res.writeHead(200, { 'Content-Length': layer.length });
      res.write(layer.subarray(start, m ? start + 1024 : layer.length / 2));
      return;
    }
    if (url === '/v2/faults/endless/manifests/1') return endless(res, 200, 'application/vnd.oci.image.manifest.v1+json');
    if (url === '/v2/faults/gone/manifests/1') return endless(res, 404, 'application/json');
    if (url.startsWith('/v2/faults/upload/blobs/uploads/') && req.method === 'POST') {
      return void res.writeHead(202, { Location: '/v2/faults/upload/blobs/uploads/u1', 'Content-Length': 0 }).end();
    }
    if (url.startsWith('/v2/faults/upload/blobs/uploads/u1')) {
      // Small blobs (the config) are taken; a large one is never read nor answered.
      if (Number(req.headers['content-length'] ?? 0) < 1024 * 1024) {
        req.resume();
        req.on('end', () => res.writeHead(201, { 'Content-Length': 0 }).end());
        return;
      }
      req.socket.pause();
      return;
    }
    if (url.startsWith('/v2/faults/upload/blobs/')) return void res.writeHead(404, { 'Content-Length': 0 }).end();
    res.writeHead(404, { 'Content-Length': 0 }).end();
  };
  const server = https.createServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, handler);
  server.on('secureConnection', () => count++);
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  port = await listen(server);
  const host = `127.0.0.1:${port}`;
  return {
    host,
    halfRef: `${host}/faults/half:1`,
    layerDigest,
    endlessManifestRef: `${host}/faults/endless:1`,
    endlessErrorRef: `${host}/faults/gone:1`,
    tokenRef: `${host}/faults/token:1`,
    uploadRepo: `${host}/faults/upload`,
    requests: () => [...seen],
    connections: () => count,
    close: closer(server, sockets),
  };
}

/**
 * Fail the test instead of hanging: without the transport's limits the
 * operations under test never settle.
 */
export function guard<T>(p: Promise<T>, ms = 20_000, what = 'the operation'): Promise<T> {
  let timer: NodeJS.Timeout;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung: no result within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}
