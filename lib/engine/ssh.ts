/**
 * SSH agents for `RUN --mount=type=ssh` (`ocistack build --ssh
 * default|ID[=SOCKET]`, `build({ ssh: { ID: SOCKET } })`), as docker buildx
 * writes them: `default` (or an id without a path) is the agent of
 * $SSH_AUTH_SOCK; `ID=SOCKET` names an agent's Unix socket. Only agent
 * sockets are accepted: buildx also loads private key files into an agent
 * of its own, which ocistack does not (start `ssh-agent` and `ssh-add` the
 * key instead); several paths for one id are refused for the same reason.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.js';

/** One `--ssh` value as [id, socket path]. */
export function parseSshFlag(spec: string, cwd: string, env: NodeJS.ProcessEnv): [string, string] {
  const eq = spec.indexOf('=');
  const id = (eq < 0 ? spec : spec.slice(0, eq)).trim();
  if (!id) throw new UsageError(`--ssh "${spec}" has no id`, 'write --ssh default or --ssh ID=SOCKET');
  let socket: string;
  if (eq < 0) {
    const agent = env.SSH_AUTH_SOCK;
    if (!agent) throw new UsageError(`--ssh ${id}: SSH_AUTH_SOCK is not set`, 'start an agent (eval "$(ssh-agent)"; ssh-add KEY), or name its socket: --ssh ID=SOCKET');
    socket = agent;
  } else {
    const paths = spec.slice(eq + 1).split(',').map((p) => p.trim()).filter(Boolean);
    if (paths.length !== 1) throw new UsageError(`--ssh "${spec}": give exactly one agent socket per id`, 'write --ssh ID=SOCKET (several agents: one --ssh each, with its own id)');
    socket = paths[0]!;
  }
  socket = path.resolve(cwd, socket);
  const st = fs.statSync(socket, { throwIfNoEntry: false });
  if (!st) throw new UsageError(`--ssh ${id}: ${socket} does not exist`, 'name the Unix socket of a running ssh-agent (echo $SSH_AUTH_SOCK)');
  if (!st.isSocket()) {
    throw new UsageError(`--ssh ${id}: ${socket} is not a socket (key files are not supported)`, `load the key into an agent (eval "$(ssh-agent)"; ssh-add ${socket}) and pass --ssh ${id}`);
  }
  return [id, socket];
}
