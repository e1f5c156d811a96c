/**
 * `ocistack logout REGISTRY`: remove stored credentials for a registry.
 */
import { UsageError } from '../../errors.js';
import { eraseCredentials, loginFilePath } from '../../registry/credentials.js';
import { parseArgs } from '../args.js';
import type { CliCommand } from '../types.js';
import { registryArg } from './login.js';

export const command: CliCommand = {
  name: 'logout',
  summary: 'Remove stored credentials for a registry',
  help: `Usage: ocistack logout REGISTRY

Remove the credentials for REGISTRY from $REGISTRY_AUTH_FILE or
~/.docker/config.json (and its credential helper).
`,
  async run(argv, io) {
    const p = parseArgs(argv, [], 'logout');
    if (p.positionals.length !== 1) throw new UsageError(`logout takes one registry, got ${p.positionals.length}`, 'see "ocistack logout --help"');
    const registry = registryArg(p.positionals[0]!);
    const removed = await eraseCredentials(registry, io.env);
    if (!removed) {
      io.stderr.write(`Not logged in to ${registry} (nothing in ${loginFilePath(io.env)})\n`);
      return 0;
    }
    io.stderr.write(`Removed login credentials for ${registry}\n`);
    return 0;
  },
};
