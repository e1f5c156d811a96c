/**
 * `ocistack login [--username U] [--password-stdin] REGISTRY`: check the
 * credentials against the registry, then store them in docker's config
 * format (REGISTRY_AUTH_FILE if set, else ~/.docker/config.json, or the
 * configured credential helper). The password is never echoed or logged.
 */
import { UsageError } from '../../errors.js';
import { storeCredentials } from '../../registry/credentials.js';
import { checkLogin } from '../../registry/login.js';
import { flagBool, flagString, parseArgs, type FlagSpec } from '../args.js';
import { registryFlagSpecs, registryOptionsFromFlags } from '../registry-flags.js';
import type { CliCommand, CliIO } from '../types.js';

const specs: FlagSpec[] = [
  { name: 'username', short: 'u', type: 'string' },
  { name: 'password', short: 'p', type: 'string' },
  { name: 'password-stdin', type: 'boolean' },
  ...registryFlagSpecs.filter((s) => s.name !== 'creds' && s.name !== 'chunk-size'),
];

const help = `Usage: ocistack login [OPTIONS] REGISTRY

Log in to a registry (host or host:port), e.g.
  echo "$PASSWORD" | ocistack login -u giteaadmin --password-stdin gitea.cnoe.localtest.me:8443

Options:
  -u, --username USER        user name (asked on stdin when missing)
      --password-stdin       read the password from stdin
  -p, --password PASS        password on the command line (visible to other users: prefer --password-stdin)
      --insecure             skip TLS verification for REGISTRY
      --ca-file FILE         trust the CA certificates in this PEM file
      --cert-dir DIR         certs.d-style directory: DIR/HOST:PORT/ca.crt
  -h, --help                 show this help

Credentials go to $REGISTRY_AUTH_FILE if set, else $DOCKER_CONFIG/config.json
(~/.docker/config.json), or to the credential helper configured there.
`;

/** `gitea.example:8443`, also accepting `https://host/` and `host/owner/img` forms users paste. */
export function registryArg(arg: string): string {
  let s = arg.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
  if (s.includes('/')) s = s.slice(0, s.indexOf('/'));
  if (!s) throw new UsageError('login needs a registry', 'write e.g. ocistack login gitea.cnoe.localtest.me:8443');
  return s;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let data = '';
  for await (const chunk of stream as AsyncIterable<Buffer | string>) data += chunk.toString();
  return data;
}

export const command: CliCommand = {
  name: 'login',
  summary: 'Log in to a registry (stores credentials in docker config format)',
  help,
  async run(argv: string[], io: CliIO) {
    const p = parseArgs(argv, specs, 'login');
    if (p.positionals.length !== 1) throw new UsageError(`login takes one registry, got ${p.positionals.length}`, 'see "ocistack login --help"');
    const registry = registryArg(p.positionals[0]!);
    const username = flagString(p, 'username');
    if (!username) throw new UsageError('login needs --username', 'write ocistack login -u USER --password-stdin REGISTRY');
    let password = flagString(p, 'password');
    if (flagBool(p, 'password-stdin')) {
      if (password !== undefined) throw new UsageError('--password and --password-stdin are exclusive', 'use --password-stdin');
      password = (await readAll(io.stdin)).replace(/\r?\n$/, '');
    }
    if (!password) throw new UsageError('login needs a password', 'pipe it in with --password-stdin');
    const opts = await registryOptionsFromFlags(p, { targets: [`${registry}/x/y`], io });
    await checkLogin(registry, { username, password }, opts);
    const where = await storeCredentials(registry, { username, password }, io.env);
    io.stderr.write(`Login succeeded: ${username} at ${registry} (credentials saved in ${where})\n`);
    return 0;
  },
};
