/**
 * `ocistack build --ssh` values (lib/engine/ssh.ts): `default` and a bare id
 * are $SSH_AUTH_SOCK, `ID=SOCKET` a named socket; anything that is not one
 * existing Unix socket is a usage error (exit 2) saying what to do.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { parseSshFlag } from '../lib/engine/ssh.js';
import { UsageError } from '../lib/errors.js';
import { makeTempDir } from './helpers/tools.js';

let dir: string;
let sock: string;
let server: net.Server;

test.before(async () => {
  dir = makeTempDir('ssh-flag');
  sock = join(dir, 'agent.sock');
  server = net.createServer();
  await new Promise<void>((r) => server.listen(sock, () => r()));
  fs.writeFileSync(join(dir, 'id_ed25519'), 'a key file');
});

test.after(() => void server.close());

test('default and a bare id are $SSH_AUTH_SOCK; ID=SOCKET is that socket, relative to the cwd', () => {
  assert.equal(parseSshFlag('default', '/', { SSH_AUTH_SOCK: sock }), ['default', sock]);
  assert.equal(parseSshFlag('github', '/', { SSH_AUTH_SOCK: sock }), ['github', sock]);
  assert.equal(parseSshFlag('gitlab=agent.sock', dir, {}), ['gitlab', sock]);
  assert.equal(parseSshFlag(`default=${sock}`, '/', {}), ['default', sock]);
});

function usage(spec: string, env: NodeJS.ProcessEnv, message: RegExp, hint: RegExp): void {
  try {
    parseSshFlag(spec, dir, env);
    assert.unreachable(spec);
  } catch (e) {
    assert.instance(e, UsageError, spec);
    assert.is((e as UsageError).exitCode, 2);
    assert.match((e as UsageError).message, message);
    assert.match((e as UsageError).hint ?? '', hint);
  }
}

test('no SSH_AUTH_SOCK, a missing path, a key file, two paths, no id: usage errors with a way out', () => {
  usage('default', {}, /SSH_AUTH_SOCK is not set/, /ssh-agent/);
  usage('x=nope.sock', {}, /does not exist/, /ssh-agent/);
  usage('default=id_ed25519', {}, /not a socket \(key files are not supported\)/, /ssh-add/);
  usage(`default=${sock},${sock}`, {}, /exactly one agent socket/, /one --ssh each/);
  usage('=agent.sock', {}, /has no id/, /--ssh default/);
});

test.run();
