/**
 * A TCP proxy on 127.0.0.1 that forwards bytes at a bounded rate in both
 * directions (per connection). It works below TLS, so a TLS registry behind
 * it keeps its certificate; used to make pulls and pushes last long enough
 * to interrupt them at a chosen point.
 */
import { connect, createServer, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

export interface SlowTcpProxy {
  /** `localhost:PORT` for image references (the test certificate names localhost). */
  host: string;
  port: number;
  close(): Promise<void>;
}

const PIECE = 64 * 1024;

/** Passes bytes through, each piece after the time it takes at `bytesPerSecond`. */
class Throttle extends Transform {
  constructor(private readonly bytesPerSecond: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const pieces: Buffer[] = [];
    for (let i = 0; i < chunk.length; i += PIECE) pieces.push(chunk.subarray(i, i + PIECE));
    const next = () => {
      const p = pieces.shift();
      if (!p) return cb();
      setTimeout(() => {
        this.push(p);
        next();
      }, (p.length / this.bytesPerSecond) * 1000);
    };
    next();
  }
}

export async function startSlowTcpProxy(upstreamPort: number, bytesPerSecond: number): Promise<SlowTcpProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(new Throttle(bytesPerSecond)).pipe(upstream);
    upstream.pipe(new Throttle(bytesPerSecond)).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    host: `localhost:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
