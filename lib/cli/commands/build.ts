/**
 * `ocistack build [CONTEXT]`: flags named like `docker build` / `buildah bud`.
 * Parses flags into BuildOptions, runs build(), prints the manifest digest on
 * stdout and progress on stderr.
 */
import * as path from 'node:path';
import { throwIfAborted } from '../../abort.js';
import { UsageError } from '../../errors.js';
import { build } from '../../engine/build.js';
import type { BuildOutput } from '../../engine/options.js';
import { parseEpoch } from '../../engine/time.js';
import { finishProgress, progressFlagSpecs, progressFlagsHelp, progressFromFlags } from '../progress-flag.js';
import { flagBool, flagList, flagString, parseArgs, parseKeyValues, type FlagSpec } from '../args.js';
import { registryFlagSpecs, registryFlagsHelp, registryOptionsFromFlags } from '../registry-flags.js';
import type { CliCommand, CliIO } from '../types.js';
import { writeFileAtomic } from '../write-file.js';
import { buildMetadata } from '../metadata-file.js';
import { checkFileDest } from '../../engine/output-dest.js';
import { selectExecutor } from '../../executor/select.js';
import { parseSecretFlag } from '../../engine/secrets.js';
import { parseSshFlag } from '../../engine/ssh.js';

/** `--allow` entitlements, as BuildKit names them. */
const ENTITLEMENTS = ['security.insecure'];

const specs: FlagSpec[] = [
  { name: 'file', short: 'f', type: 'string' },
  { name: 'tag', short: 't', type: 'list' },
  { name: 'build-arg', type: 'list' },
  { name: 'target', type: 'string' },
  { name: 'platform', type: 'string' },
  { name: 'push', type: 'boolean' },
  { name: 'output', short: 'o', type: 'list' },
  { name: 'digest-file', type: 'string' },
  { name: 'metadata-file', type: 'string' },
  ...progressFlagSpecs,
  { name: 'source-date-epoch', type: 'string' },
  { name: 'cache-dir', type: 'string' },
  { name: 'executor', type: 'string' },
  { name: 'allow', type: 'list' },
  { name: 'secret', type: 'list' },
  { name: 'ssh', type: 'list' },
  ...registryFlagSpecs,
];

const help = `Usage: ocistack build [OPTIONS] [CONTEXT]

Build an image from a Dockerfile. CONTEXT is a directory (default ".").
The manifest digest is printed on stdout; progress goes to stderr.

Options:
  -f, --file FILE            Dockerfile (default CONTEXT/Dockerfile)
  -t, --tag REF              name the image, e.g. gitea.cnoe.localtest.me:8443/giteaadmin/app:1 (repeatable)
      --build-arg K=V        set a build argument (repeatable; K alone takes it from the environment)
      --target STAGE         build this stage instead of the last one
      --platform OS/ARCH     target platform (default: this machine)
      --push                 push every tag after a successful build
  -o, --output type=oci,dest=DIR
                             also write the image to an OCI image layout directory
      --digest-file FILE     write the manifest digest (sha256:...) to FILE
      --metadata-file FILE   write what was built as JSON to FILE, with buildx's keys
                             (containerimage.digest, containerimage.config.digest,
                             containerimage.descriptor, image.name) plus ocistack.layers
                             and ocistack.pushed
                             (FILE's directory, and --output's, are checked before the build starts)
${progressFlagsHelp}
      --source-date-epoch N  clamp all timestamps to N (also read from $SOURCE_DATE_EPOCH)
      --cache-dir DIR        blob cache (default $OCISTACK_CACHE_DIR or ~/.cache/ocistack)
      --executor NAME        what runs RUN steps: runc or none (default: runc when it is on
                             PATH, else none, and a RUN then says how to install runc)
      --allow ENTITLEMENT    allow security.insecure (RUN --security=insecure); repeatable
      --secret id=ID,src=FILE|env=VAR
                             a secret for RUN --mount=type=secret,id=ID (repeatable; never
                             stored in the image, its history or the output)
      --ssh default|ID=SOCKET
                             an SSH agent for RUN --mount=type=ssh,id=ID (repeatable;
                             default is $SSH_AUTH_SOCK; agent sockets only, no key files)
${registryFlagsHelp}
  -h, --help                 show this help

Exit status: 0 built (and pushed), 1 build or push failed, 2 usage error,
130/143 interrupted by SIGINT/SIGTERM (nothing half-written is left, no tag pushed).
`;

export function parseOutput(spec: string): BuildOutput {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--output "${spec}": "${part}" is not KEY=VALUE`, 'write --output type=oci,dest=DIR');
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  const dest = fields.get('dest');
  if (type !== 'oci') throw new UsageError(`--output type "${type ?? ''}" is not supported`, 'use --output type=oci,dest=DIR');
  if (!dest) throw new UsageError(`--output "${spec}" has no dest`, 'write --output type=oci,dest=DIR');
  for (const k of fields.keys()) {
    if (k !== 'type' && k !== 'dest') throw new UsageError(`--output key "${k}" is not supported`, 'the keys are type and dest');
  }
  return { type: 'oci', dest };
}

export const command: CliCommand = {
  name: 'build',
  summary: 'Build an image from a Dockerfile',
  help,
  async run(argv: string[], io: CliIO): Promise<number> {
    const p = parseArgs(argv, specs, 'build');
    if (p.positionals.length > 1) {
      throw new UsageError(`build takes one context directory, got ${p.positionals.length}: ${p.positionals.join(' ')}`, 'put flags before or after the context; see "ocistack build --help"');
    }
    const context = path.resolve(io.cwd, p.positionals[0] ?? '.');
    const file = flagString(p, 'file');
    const tags = flagList(p, 'tag');
    const push = flagBool(p, 'push');
    if (push && tags.length === 0) throw new UsageError('--push needs at least one -t REF', 'add -t REGISTRY/OWNER/IMAGE:TAG');
    const epoch = flagString(p, 'source-date-epoch');
    const onProgress = progressFromFlags(p, io);
    // Result files are written after the build: a bad destination fails now, not then.
    const digestFile = flagString(p, 'digest-file');
    const metadataFile = flagString(p, 'metadata-file');
    if (digestFile) await checkFileDest(path.resolve(io.cwd, digestFile), '--digest-file');
    if (metadataFile) await checkFileDest(path.resolve(io.cwd, metadataFile), '--metadata-file');
    const allow = flagList(p, 'allow');
    for (const a of allow) {
      if (!ENTITLEMENTS.includes(a)) throw new UsageError(`--allow "${a}" is not an entitlement ocistack knows`, `--allow takes ${ENTITLEMENTS.join(', ')}`);
    }
    const secrets = Object.fromEntries(flagList(p, 'secret').map((spec) => parseSecretFlag(spec, io.cwd, io.env)));
    const ssh = Object.fromEntries(flagList(p, 'ssh').map((spec) => parseSshFlag(spec, io.cwd, io.env)));
    const executor = await selectExecutor(flagString(p, 'executor'), io.env);
    const registry = await registryOptionsFromFlags(p, { targets: tags, io });

    const result = await build({
      context,
      dockerfile: file !== undefined ? path.resolve(io.cwd, file) : undefined,
      tags,
      buildArgs: parseKeyValues(flagList(p, 'build-arg'), 'build-arg', io.env),
      target: flagString(p, 'target'),
      platform: flagString(p, 'platform'),
      push,
      output: flagList(p, 'output').map(parseOutput).map((o) => ({ ...o, dest: path.resolve(io.cwd, o.dest) })),
      registry: { ...registry, onProgress },
      cacheDir: flagString(p, 'cache-dir'),
      sourceDateEpoch: epoch !== undefined ? parseEpoch(epoch, '--source-date-epoch') : undefined,
      onProgress,
      env: io.env,
      signal: io.signal,
      executor,
      allowInsecure: allow.includes('security.insecure'),
      secrets,
      ssh,
    });

    if (!push && result.pushed.length === 0 && flagList(p, 'output').length === 0) {
      // Like docker build, the image stays in our store (the build cache), named by its tags.
      onProgress({
        type: 'info',
        message: tags.length
          ? `the image is in the build cache as ${tags.join(', ')}: "ocistack push ${tags[0]}" sends it to its registry`
          : 'the image is only in the build cache, unnamed: add -t REF (then "ocistack push REF"), --push, or --output type=oci,dest=DIR',
      });
    }
    throwIfAborted(io.signal); // no digest file for an interrupted build
    if (digestFile) await writeFileAtomic(path.resolve(io.cwd, digestFile), `${result.manifestDigest}\n`);
    if (metadataFile) await writeFileAtomic(path.resolve(io.cwd, metadataFile), JSON.stringify(buildMetadata(result), null, 2) + '\n');
    for (const ref of result.pushed) onProgress({ type: 'info', message: `pushed ${ref}@${result.manifestDigest}` });
    finishProgress(io); // the summary is the last progress line, the digest the last line of all
    io.stdout.write(`${result.manifestDigest}\n`);
    return 0;
  },
};

