/**
 * The build's outputs besides a push (`BuildOptions.output`, the CLI's
 * `--output`): which writer each one needs, checking every destination
 * before the build starts, and writing them after it succeeded.
 *
 *  - `oci`, dest a directory: an OCI image layout (new, or added to);
 *  - `oci`, dest ending in `.tar`: the same layout as one tar file (oci-archive:);
 *  - `docker`: a docker-archive tar (docker load, podman load, kind load image-archive);
 *  - `local`: the final file system, unpacked.
 * Each is written whole or not at all (temp sibling + rename, see
 * lib/output/staging.ts), one after the other, only once the image is in
 * the blob store: a failed build writes none of them.
 */
import * as path from 'node:path';
import { throwIfAborted } from '../abort.js';
import { UsageError } from '../errors.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor, ImageConfig, ImageManifest } from '../image/types.js';
import type { ProgressListener } from '../progress/events.js';
import type { ImageReference } from '../registry/reference.js';
import type { BuildOutput } from './options.js';
import { checkArchiveDest, checkLayoutDest, checkLocalDest } from './output-dest.js';

/** What a `BuildOutput` is written as. */
export type OutputKind = 'oci-layout' | 'oci-archive' | 'docker-archive' | 'local';

export function outputKind(out: BuildOutput): OutputKind {
  if (out.type === 'oci') return /\.tar$/i.test(out.dest) ? 'oci-archive' : 'oci-layout';
  if (out.type === 'docker') return 'docker-archive';
  return 'local';
}

/** `BuildOptions.output` as a list, each dest absolute; refuses unknown types and two outputs to one place. */
export function outputList(output: BuildOutput | BuildOutput[] | undefined): BuildOutput[] {
  const list = output === undefined ? [] : Array.isArray(output) ? output : [output];
  const seen = new Set<string>();
  return list.map((o) => {
    if (o.type !== 'oci' && o.type !== 'docker' && o.type !== 'local') {
      throw new UsageError(`output type "${(o as { type: string }).type}" is not supported`, 'the output types are oci, docker and local');
    }
    if (!o.dest) throw new UsageError(`output type ${o.type} has no dest`, `give it one, e.g. { type: '${o.type}', dest: '${o.type === 'local' ? 'out' : 'image.tar'}' }`);
    const dest = path.resolve(o.dest);
    if (seen.has(dest)) throw new UsageError(`two outputs write to ${dest}`, 'give each output its own dest');
    seen.add(dest);
    return { type: o.type, dest };
  });
}

/** Fail now (code OUTPUT_DEST) for a destination that cannot take its output. */
export async function checkOutputDests(outputs: BuildOutput[]): Promise<void> {
  for (const out of outputs) {
    const kind = outputKind(out);
    if (kind === 'oci-layout') await checkLayoutDest(out.dest);
    else if (kind === 'oci-archive') await checkArchiveDest(out.dest, 'an OCI archive');
    else if (kind === 'docker-archive') await checkArchiveDest(out.dest, 'a docker archive');
    else await checkLocalDest(out.dest);
  }
}

export interface WriteOutputsOptions {
  outputs: BuildOutput[];
  store: BlobStore;
  manifest: Descriptor;
  /** The build's tags: the first names the image in OCI outputs, all are the docker archive's RepoTags. */
  tags: ImageReference[];
  /** SOURCE_DATE_EPOCH: the archives' entry times (else 0), so they are reproducible. */
  epoch?: number;
  signal?: AbortSignal;
  progress: ProgressListener;
}

const WROTE: Record<OutputKind, string> = {
  'oci-layout': 'OCI layout',
  'oci-archive': 'OCI archive',
  'docker-archive': 'docker archive',
  local: 'file system',
};

export async function writeOutputs(opts: WriteOutputsOptions): Promise<void> {
  // Like BuildKit's oci exporter: the ref.name annotation is the tag of the first -t.
  const ociTag = opts.tags[0] ? opts.tags[0].tag ?? 'latest' : undefined;
  for (const out of opts.outputs) {
    throwIfAborted(opts.signal);
    const kind = outputKind(out);
    const started = performance.now();
    // The writers are imported when used: a build without --output (and every
    // cached rebuild) does not load the archive and rootfs code at start-up.
    if (kind === 'oci-layout') {
      const { writeOciLayout } = await import('../image/layout.js');
      await writeOciLayout({ dir: out.dest, store: opts.store, signal: opts.signal, manifests: [{ descriptor: opts.manifest, tag: ociTag }] });
    } else if (kind === 'oci-archive') {
      const { writeOciArchive } = await import('../output/oci-archive.js');
      await writeOciArchive({ file: out.dest, store: opts.store, manifest: opts.manifest, tag: ociTag, mtime: opts.epoch, signal: opts.signal });
    } else if (kind === 'docker-archive') {
      const { repoTag, writeDockerArchive } = await import('../output/docker-archive.js');
      const repoTags = [...new Set(opts.tags.map(repoTag).filter((t): t is string => t !== undefined))];
      await writeDockerArchive({ file: out.dest, store: opts.store, manifest: opts.manifest, repoTags, mtime: opts.epoch, signal: opts.signal });
    } else {
      const { writeLocalRootfs } = await import('../output/local.js');
      const m = await opts.store.readJson<ImageManifest>(opts.manifest.digest);
      const config = await opts.store.readJson<ImageConfig>(m.config.digest);
      await writeLocalRootfs({ dir: out.dest, store: opts.store, layers: m.layers, diffIds: config.rootfs.diff_ids, signal: opts.signal, onProgress: opts.progress });
    }
    opts.progress({ type: 'info', message: `wrote ${WROTE[kind]} ${out.dest} (${Math.round(performance.now() - started)} ms)` });
  }
}
