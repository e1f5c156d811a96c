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
import { parseOutputFlag } from '../output-flag.js';
import { checkFileDest } from '../../engine/output-dest.js';
import { selectExecutor } from '../../executor/select.js';
import { parseSecretFlag } from '../../engine/secrets.js';
import { parseSshFlag } from '../../engine/ssh.js';
import { parseCacheFlag } from '../cache-flag.js';

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
  // podman/buildah spell it --digestfile.
  { name: 'digestfile', type: 'string' },
  { name: 'metadata-file', type: 'string' },
  ...progressFlagSpecs,
  { name: 'source-date-epoch', type: 'string' },
  { name: 'cache-dir', type: 'string' },
  { name: 'executor', type: 'string' },
  { name: 'allow', type: 'list' },
  { name: 'secret', type: 'list' },
  { name: 'ssh', type: 'list' },
  { name: 'no-cache', type: 'boolean' },
  { name: 'no-cache-filter', type: 'list' },
  { name: 'cache-to', type: 'list' },
  { name: 'cache-from', type: 'list' },
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
  -o, --output SPEC          also write the image somewhere (repeatable; buildx's syntax):
                               type=oci,dest=DIR       an OCI image layout directory
                               type=oci,dest=FILE.tar  the same as one tar (oci-archive:)
                               type=docker,dest=FILE   a docker-archive tar for docker load,
                                                       podman load, kind load image-archive
                               type=local,dest=DIR     the final file system, unpacked
                                                       (DIR new or empty); PATH alone = this
                               type=registry[,name=REF] push (= --push; name adds a tag)
      --digest-file FILE     write the manifest digest (sha256:...) to FILE (also --digestfile)
      --metadata-file FILE   write what was built as JSON to FILE, with buildx's keys
                             (containerimage.digest, containerimage.config.digest,
                             containerimage.descriptor, image.name) plus ocistack.layers,
                             ocistack.pushed, ocistack.size (config + layers), ocistack.tags,
                             ocistack.outputs
                             and ocistack.steps (per step: cached, durationMs)
                             (FILE's directory, and --output's, are checked before the build starts)
${progressFlagsHelp}
      --source-date-epoch N  clamp all timestamps to N (also read from $SOURCE_DATE_EPOCH)
      --cache-dir DIR        blob cache (default $OCISTACK_CACHE_DIR or ~/.cache/ocistack)
      --no-cache             run every step, use no cached result (results are still recorded)
      --no-cache-filter STAGE
                             run every step of these stages (by name or index; repeatable or
                             a comma list), the others may come from the cache
      --cache-to type=registry,ref=REF[,mode=min|max][,ignore-error=true]
                             after the build (and push), write the step results to REF as an
                             ordinary OCI image, for other machines' --cache-from (repeatable);
                             mode=min (default): the final image's stages, max: every stage;
                             a failed export fails the build unless ignore-error=true
      --cache-from type=registry,ref=REF | REF
                             reuse step results from REF (repeatable): a step that misses here
                             and is in REF fetches its layers from REF; a missing REF is a warning
                             (-t, --cache-to and --cache-from registries get --creds and --insecure)
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

/** One `--output` spec that writes files (kept for callers of the old name; `type=registry` is a push, not a BuildOutput). */
export function parseOutput(spec: string): BuildOutput {
  const o = parseOutputFlag(spec);
  if (o.kind !== 'output') throw new UsageError(`--output "${spec}" is a push, not a file output`, 'use --push');
  return o.output;
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
    const outputFlags = flagList(p, 'output').map(parseOutputFlag);
    // `-o type=registry[,name=REF]` is --push; its names are tags too.
    const tags = [...flagList(p, 'tag')];
    for (const o of outputFlags) if (o.kind === 'push' && o.name && !tags.includes(o.name)) tags.push(o.name);
    const push = flagBool(p, 'push') || outputFlags.some((o) => o.kind === 'push');
    const outputs = outputFlags.flatMap((o) => (o.kind === 'output' ? [{ ...o.output, dest: path.resolve(io.cwd, o.output.dest) }] : []));
    if (push && tags.length === 0) throw new UsageError('--push (or -o type=registry) needs at least one -t REF', 'add -t REGISTRY/OWNER/IMAGE:TAG, or -o type=registry,name=REF');
    const epoch = flagString(p, 'source-date-epoch');
    const onProgress = progressFromFlags(p, io);
    // Result files are written after the build: a bad destination fails now, not then.
    const digestFile = flagString(p, 'digest-file') ?? flagString(p, 'digestfile');
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
    const cacheTo = flagList(p, 'cache-to').map((v) => parseCacheFlag(v, 'cache-to'));
    const cacheFrom = flagList(p, 'cache-from').map((v) => parseCacheFlag(v, 'cache-from'));
    // The cache refs are registries named on the command line: --insecure, --plain-http and --creds cover them too.
    const registry = await registryOptionsFromFlags(p, { targets: [...tags, ...cacheTo.map((c) => c.ref), ...cacheFrom.map((c) => c.ref)], io });

    const result = await build({
      context,
      dockerfile: file !== undefined ? path.resolve(io.cwd, file) : undefined,
      tags,
      buildArgs: parseKeyValues(flagList(p, 'build-arg'), 'build-arg', io.env),
      target: flagString(p, 'target'),
      platform: flagString(p, 'platform'),
      push,
      output: outputs,
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
      noCache: flagBool(p, 'no-cache'),
      noCacheFilter: flagList(p, 'no-cache-filter').flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean),
      cacheTo,
      cacheFrom,
    });

    if (!push && result.pushed.length === 0 && outputs.length === 0) {
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
    if (metadataFile) await writeFileAtomic(path.resolve(io.cwd, metadataFile), JSON.stringify(buildMetadata(result, { outputs }), null, 2) + '\n');
    for (const ref of result.pushed) onProgress({ type: 'info', message: `pushed ${ref}@${result.manifestDigest}` });
    finishProgress(io); // the summary is the last progress line, the digest the last line of all
    io.stdout.write(`${result.manifestDigest}\n`);
    return 0;
  },
};

