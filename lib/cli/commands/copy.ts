/**
 * `ocistack copy SOURCE DEST` (and the shared runner for `push`): copy an
 * image between `docker://REF`, `oci:DIR[:TAG]` and `docker-archive:FILE`.
 * Prints the manifest digest on stdout, progress on stderr.
 */
import { UsageError } from '../../errors.js';
import { BlobStore } from '../../image/store.js';
import { progressFlagSpecs, progressFlagsHelp, progressFromFlags } from '../progress-flag.js';
import { copyCredentialHosts, copyImage, formatLocation, parseLocation, type ImageLocation } from '../../registry/copy.js';
import { parseReference } from '../../registry/reference.js';
import type { Credentials } from '../../registry/types.js';
import { flagBool, flagString, parseArgs, type FlagSpec, type ParsedArgs } from '../args.js';
import { parseCreds, registryFlagSpecs, registryFlagsHelp, registryOptionsFromFlags } from '../registry-flags.js';
import { checkFileDest } from '../../engine/output-dest.js';
import type { CliCommand, CliIO } from '../types.js';

export const copyFlagSpecs: FlagSpec[] = [
  ...progressFlagSpecs,
  { name: 'platform', type: 'string' },
  { name: 'all', short: 'a', type: 'boolean' },
  { name: 'cache-dir', type: 'string' },
  { name: 'digest-file', type: 'string' },
  { name: 'src-creds', type: 'string' },
  { name: 'dest-creds', type: 'string' },
  ...registryFlagSpecs,
];

export const copyFlagsHelp = `${progressFlagsHelp}
      --platform OS/ARCH     platform to copy from a multi-platform source (default: this machine)
  -a, --all                  copy a multi-platform index with every platform
      --cache-dir DIR        blob cache (default $OCISTACK_CACHE_DIR or ~/.cache/ocistack)
      --digest-file FILE     write the manifest digest (sha256:...) to FILE
      --src-creds USER[:PASS]  credentials for the source registry only (as skopeo's)
      --dest-creds USER[:PASS] credentials for the destination registry only (--creds means the same here)
${registryFlagsHelp}
  -h, --help                 show this help`;

const help = `Usage: ocistack copy [OPTIONS] SOURCE DEST

Copy an image. SOURCE and DEST are one of
  docker://REF                 an image in a registry, e.g. docker://gitea.cnoe.localtest.me:8443/giteaadmin/app:1
  local:REF                    an image named in the build cache by "ocistack build -t REF"
  oci:DIR[:TAG]                an OCI image layout directory
  docker-archive:FILE[:REF]    a "docker save" tar (REF or @INDEX picks one of several images)

Options:
${copyFlagsHelp}

Exit status: 0 copied, 1 failed, 2 usage error.
`;

/**
 * `--src-creds` / `--dest-creds` (skopeo's flags) as per-host credentials:
 * each goes to its own side's registry and nowhere else.
 */
async function sideCredentials(p: ParsedArgs, source: ImageLocation, destination: ImageLocation, io: CliIO): Promise<Record<string, Credentials> | undefined> {
  const out: Record<string, Credentials> = {};
  const sides = [['src-creds', source], ['dest-creds', destination]] as const;
  for (const [flag, loc] of sides) {
    const spec = flagString(p, flag);
    if (spec === undefined) continue;
    if (loc.transport !== 'docker') throw new UsageError(`--${flag} needs a docker:// ${flag === 'src-creds' ? 'source' : 'destination'}`, `drop --${flag}`);
    const host = parseReference(loc.ref).registry;
    if (out[host]) throw new UsageError(`--src-creds and --dest-creds both name ${host}`, 'source and destination are on the same registry: pass its credentials once with --creds');
    out[host] = await parseCreds(spec, io);
  }
  if (flagString(p, 'dest-creds') !== undefined && flagString(p, 'creds') !== undefined) {
    throw new UsageError('--creds and --dest-creds both give the destination credentials', 'pass one of them');
  }
  return Object.keys(out).length ? out : undefined;
}

/** Shared by copy and push: parse, copy, print. */
export async function runCopy(argv: string[], io: CliIO, name: 'copy' | 'push', defaultDest?: 'docker'): Promise<number> {
  const p = parseArgs(argv, copyFlagSpecs, name);
  // `ocistack push REF` (docker push style): the image built as REF goes to REF.
  if (name === 'push' && p.positionals.length === 1) p.positionals.push(p.positionals[0]!);
  if (p.positionals.length !== 2) {
    throw new UsageError(`${name} takes SOURCE and DEST, got ${p.positionals.length} argument(s)`, `see "ocistack ${name} --help"`);
  }
  // push's SOURCE without a transport is an image built here (like `buildah push IMAGE`).
  const source = parseLocation(p.positionals[0]!, name === 'push' ? 'local' : undefined);
  const destination = parseLocation(p.positionals[1]!, defaultDest);
  const onProgress = progressFromFlags(p, io);
  // --insecure applies to the registries named on this command line; --creds
  // to the destination registry (the source's when the destination is no registry).
  const targets = [source, destination].filter((l) => l.transport === 'docker').map((l) => (l as { ref: string }).ref);
  const digestFileFlag = flagString(p, 'digest-file');
  if (digestFileFlag) await checkFileDest((await import('node:path')).resolve(io.cwd, digestFileFlag), '--digest-file');
  const registry = await registryOptionsFromFlags(p, { targets, credsHosts: copyCredentialHosts(source, destination), io });
  const byHost = await sideCredentials(p, source, destination, io);
  if (byHost) registry.credentialsByHost = byHost;
  const cacheDir = flagString(p, 'cache-dir');
  const store = new BlobStore(cacheDir ? (await import('node:path')).resolve(io.cwd, cacheDir) : undefined, { signal: io.signal });
  const r = await copyImage({
    source,
    destination,
    store,
    registry: { ...registry, onProgress },
    platform: flagString(p, 'platform'),
    all: flagBool(p, 'all'),
    cwd: io.cwd,
  });
  onProgress({ type: 'info', message: `copied ${formatLocation(source)} to ${r.written.join(', ')}` });
  const digestFile = flagString(p, 'digest-file');
  if (digestFile) {
    const { writeFileAtomic } = await import('../write-file.js');
    await writeFileAtomic((await import('node:path')).resolve(io.cwd, digestFile), `${r.digest}\n`);
  }
  io.stdout.write(`${r.digest}\n`);
  return 0;
}

export const command: CliCommand = {
  name: 'copy',
  summary: 'Copy an image between registries, OCI layouts and docker-archive files',
  help,
  run: (argv, io) => runCopy(argv, io, 'copy'),
};
