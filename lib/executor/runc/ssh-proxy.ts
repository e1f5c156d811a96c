/**
 * `RUN --mount=type=ssh`: a Unix socket of this step that forwards every
 * connection to the build's SSH agent socket, as BuildKit's sshforward
 * does. A socket of our own rather than a bind of the agent's: it gets the
 * mount's uid, gid and mode (a `USER app` step can reach it), it lives only
 * as long as the step, and in rootless mode the worker (root of its user
 * namespace, which maps the caller's uid) connects to the caller's agent
 * on the step's behalf. Bytes are passed through untouched: the agent
 * protocol is never parsed, keys never leave the agent.
 *
 * The socket lives in a private temp dir of its own (below os.tmpdir()):
 * a Unix socket path is limited to 107 bytes, which a step dir below a
 * deep cache dir can exceed.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeTemp, tempName, trackTemp } from '../../temp-files.js';

export interface SshProxy {
  /** Host path of the step's socket. */
  socket: string;
  close(): Promise<void>;
}

export async function startSshProxy(agent: string, opts: { uid: number; gid: number; mode: number }): Promise<SshProxy> {
  const dir = path.join(os.tmpdir(), tempName('ssh'));
  fs.mkdirSync(dir, { mode: 0o700 });
  trackTemp(dir);
  const socket = path.join(dir, 'agent.sock');
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(agent);
    open.add(client).add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => resolve());
    });
    fs.chownSync(socket, opts.uid, opts.gid);
    fs.chmodSync(socket, opts.mode & 0o7777);
  } catch (e) {
    server.close();
    await removeTemp(dir).catch(() => undefined);
    throw e;
  }
  return {
    socket,
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeTemp(dir).catch(() => undefined);
    },
  };
}
