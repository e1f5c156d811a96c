/**
 * `ocistack pull REF --output oci:DIR[:TAG]`: pull an image into the blob
 * cache and, with --output, into an OCI layout (or docker-archive).
 */
import * as path from 'node:path';
import { UsageError } from '../../errors.js';
import { BlobStore } from '../../image/store.js';
import { progressFlagSpecs, progressFlagsHelp, progressFromFlags } from '../progress-flag.js';
import { copyImage, formatLocation, parseLocation } from '../../registry/copy.js';
import { pullImage } from '../../registry/pull.js';
import { flagBool, flagString, parseArgs, type FlagSpec } from '../args.js';
import { registryFlagSpecs, registryFlagsHelp, registryOptionsFromFlags } from '../registry-flags.js';
import type { CliCommand } from '../types.js';

const specs: FlagSpec[] = [
  { name: 'output', short: 'o', type: 'string' },
  ...progressFlagSpecs,
  { name: 'platform', type: 'string' },
  { name: 'all', short: 'a', type: 'boolean' },
  { name: 'cache-dir', type: 'string' },
  ...registryFlagSpecs,
];

const help = `Usage: ocistack pull [OPTIONS] REF

Pull an image into the blob cache; with --output also write it out.
REF is a registry reference (docker:// optional).

Options:
  -o, --output DEST          oci:DIR[:TAG] or docker-archive:FILE[:REF] (TAG defaults to REF's tag)
${progressFlagsHelp}
      --platform OS/ARCH     platform to pull from a multi-platform image (default: this machine)
  -a, --all                  pull every platform of a multi-platform image (with --output oci:)
      --cache-dir DIR        blob cache (default $OCISTACK_CACHE_DIR or ~/.cache/ocistack)
${registryFlagsHelp}
  -h, --help                 show this help

The manifest digest is printed on stdout.
Exit status: 0 pulled, 1 failed, 2 usage error.
`;

export const command: CliCommand = {
  name: 'pull',
  summary: 'Pull an image from a registry into the cache or an OCI layout',
  help,
  async run(argv, io) {
    const p = parseArgs(argv, specs, 'pull');
    if (p.positionals.length !== 1) throw new UsageError(`pull takes one image reference, got ${p.positionals.length}`, 'see "ocistack pull --help"');
    const source = parseLocation(p.positionals[0]!, 'docker');
    if (source.transport !== 'docker') throw new UsageError('pull reads from a registry', 'use "ocistack copy" for oci: and docker-archive: sources');
    const onProgress = progressFromFlags(p, io);
    const registry = { ...(await registryOptionsFromFlags(p, { targets: [source.ref], io })), onProgress };
    const cacheDir = flagString(p, 'cache-dir');
    const store = new BlobStore(cacheDir ? path.resolve(io.cwd, cacheDir) : undefined, { signal: io.signal });
    const output = flagString(p, 'output');
    if (!output) {
      if (flagBool(p, 'all')) throw new UsageError('--all needs --output oci:DIR');
      const r = await pullImage({ ref: source.ref, store, platform: flagString(p, 'platform'), registry });
      io.stdout.write(`${r.manifestDigest}\n`);
      return 0;
    }
    const destination = parseLocation(output);
    if (destination.transport === 'docker') throw new UsageError('--output takes oci:DIR[:TAG] or docker-archive:FILE', 'use "ocistack copy" to copy between registries');
    if (destination.transport === 'oci' && !destination.tag) {
      // Default the layout tag to the reference's tag, as skopeo users expect to find it by name.
      const { parseReference } = await import('../../registry/reference.js');
      destination.tag = parseReference(source.ref).tag;
    }
    const r = await copyImage({ source, destination, store, registry, platform: flagString(p, 'platform'), all: flagBool(p, 'all'), cwd: io.cwd });
    onProgress({ type: 'info', message: `pulled ${source.ref} to ${formatLocation(destination)}` });
    io.stdout.write(`${r.digest}\n`);
    return 0;
  },
};
