/**
 * Copying images between transports, skopeo-style:
 * `docker://REF`, `oci:DIR[:TAG]`, `docker-archive:FILE[:REF|:@N]`.
 * The source goes into the blob store (verified), then the destination is
 * written from there.
 */
import * as path from 'node:path';
import { OcistackError, UsageError } from '../errors.js';
import { findLocalImage, tagLocalImage } from '../image/local-images.js';
import { parseArchiveRef } from '../image/archive-ref.js';
import { parseLayoutRef, readOciLayout, writeOciLayout } from '../image/layout.js';
import type { BlobStore } from '../image/store.js';
import type { Descriptor, Digest } from '../image/types.js';
import { RegistrySession } from './client.js';
import { withCredentialScope } from './credential-scope.js';
import { pullAll, pullImage } from './pull.js';
import { pushImage } from './push.js';
import { DOCKER_HUB, parseReference } from './reference.js';
import type { RegistryOptions } from './types.js';

export type ImageLocation =
  | { transport: 'docker'; ref: string }
  /** An image `ocistack build -t REF` named in the build cache. */
  | { transport: 'local'; ref: string }
  | { transport: 'oci'; dir: string; tag?: string }
  | { transport: 'docker-archive'; file: string; ref?: string; index?: number };

/**
 * Parse a transport-qualified location. With `defaultTransport`, a name
 * without a transport is taken as that (push/pull destinations default to
 * `docker`).
 */
export function parseLocation(spec: string, defaultTransport?: 'docker' | 'local'): ImageLocation {
  if (spec.startsWith('docker://')) return { transport: 'docker', ref: checked(spec.slice('docker://'.length)) };
  if (spec.startsWith('local:')) return { transport: 'local', ref: checked(spec.slice('local:'.length)) };
  if (spec.startsWith('oci:')) return { transport: 'oci', ...parseLayoutRef(spec.slice('oci:'.length)) };
  if (spec.startsWith('docker-archive:')) return { transport: 'docker-archive', ...parseArchiveRef(spec.slice('docker-archive:'.length)) };
  const m = /^(dir|oci-archive|containers-storage|docker-daemon|tarball):/.exec(spec);
  if (m) throw new UsageError(`transport "${m[1]}:" is not supported`, 'use docker://REF, oci:DIR[:TAG] or docker-archive:FILE');
  if (defaultTransport) return { transport: defaultTransport, ref: checked(spec) };
  throw new UsageError(`"${spec}" names no transport`, `write docker://${spec}, local:${spec}, oci:${spec} or docker-archive:${spec}`);
}

/** Validate a reference now, so a bad destination fails before any work (exit 2). */
function checked(ref: string): string {
  parseReference(ref);
  return ref;
}

export function formatLocation(l: ImageLocation): string {
  switch (l.transport) {
    case 'docker':
      return `docker://${l.ref}`;
    case 'local':
      return `local:${l.ref}`;
    case 'oci':
      return `oci:${l.dir}${l.tag ? `:${l.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${l.file}${l.ref ? `:${l.ref}` : l.index !== undefined ? `:@${l.index}` : ''}`;
  }
}

export interface CopyImageOptions {
  source: ImageLocation;
  destination: ImageLocation;
  store: BlobStore;
  registry?: RegistryOptions;
  /** `os/arch[/variant]` to pick from a multi-platform source (default this machine's). */
  platform?: string;
  /** Copy a multi-platform index whole instead of one platform. */
  all?: boolean;
  /** Working directory for relative paths. */
  cwd?: string;
}

export interface CopyImageResult {
  /** Digest of the manifest (or index) written to the destination. */
  digest: Digest;
  descriptor: Descriptor;
  /** Destination names written (tags for docker://). */
  written: string[];
}

/** The tag an archive's image would carry in `docker images` (familiar form). */
function familiar(ref: string): string {
  const r = parseReference(ref);
  let repo = r.repository;
  if (r.registry === DOCKER_HUB && repo.startsWith('library/')) repo = repo.slice('library/'.length);
  const name = r.registry === DOCKER_HUB ? repo : `${r.registry}/${repo}`;
  return `${name}:${r.tag ?? 'latest'}`;
}

/**
 * Hosts explicit credentials apply to in a copy: the destination registry
 * (like skopeo's --dest-creds); when the destination is not a registry, the
 * source's (a pull). Never both: the source of a registry-to-registry copy
 * needs `credentialsByHost` (`--src-creds`).
 */
export function copyCredentialHosts(source: ImageLocation, destination: ImageLocation): string[] {
  const target = destination.transport === 'docker' ? destination : source.transport === 'docker' ? source : undefined;
  return target ? [parseReference((target as { ref: string }).ref).registry] : [];
}

/** Copy one image (or index with `all`) from source to destination. */
export async function copyImage(opts: CopyImageOptions): Promise<CopyImageResult> {
  const cwd = opts.cwd ?? process.cwd();
  const session = new RegistrySession(withCredentialScope(opts.registry, copyCredentialHosts(opts.source, opts.destination)));
  try {
    let descriptor: Descriptor;
    let sourceName: string | undefined;
    const src = opts.source;
    switch (src.transport) {
      case 'docker': {
        if (opts.all) {
          descriptor = (await pullAll({ ref: src.ref, store: opts.store, registry: opts.registry, session })).descriptor;
        } else {
          const r = await pullImage({ ref: src.ref, store: opts.store, platform: opts.platform, registry: opts.registry, session });
          descriptor = r.manifestDescriptor;
          // A copied image has no platform annotation in its own right.
          delete descriptor.platform;
        }
        sourceName = src.ref;
        break;
      }
      case 'local': {
        const name = parseReference(src.ref).toString();
        const found = await findLocalImage(opts.store, name);
        if (!found) {
          throw new OcistackError(`no image named ${name} in the build cache ${opts.store.root}`, {
            code: 'LOCAL_IMAGE_MISSING',
            hint: `build it first with "ocistack build -t ${src.ref}" (same --cache-dir), or name a transport: docker://, oci: or docker-archive:`,
          });
        }
        descriptor = found;
        sourceName = name;
        break;
      }
      case 'oci': {
        const r = await readOciLayout({ dir: path.resolve(cwd, src.dir), tag: src.tag, store: opts.store });
        descriptor = r.descriptor;
        break;
      }
      case 'docker-archive': {
        const { readDockerArchive } = await import('../image/archive.js'); // node-tar only when needed
        const r = await readDockerArchive({ file: path.resolve(cwd, src.file), store: opts.store, ref: src.ref, index: src.index });
        descriptor = r.descriptor;
        sourceName = r.repoTags[0];
        break;
      }
    }
    const dst = opts.destination;
    switch (dst.transport) {
      case 'docker': {
        const r = await pushImage({ store: opts.store, manifest: descriptor, tags: [dst.ref], registry: opts.registry, session });
        return { digest: r.digest, descriptor, written: r.pushed };
      }
      case 'local': {
        const name = parseReference(dst.ref).toString();
        await tagLocalImage(opts.store, descriptor, [name]);
        return { digest: descriptor.digest, descriptor, written: [`local:${name}`] };
      }
      case 'oci': {
        const dir = path.resolve(cwd, dst.dir);
        await writeOciLayout({ dir, store: opts.store, manifests: [{ descriptor, tag: dst.tag }], signal: opts.registry?.signal });
        return { digest: descriptor.digest, descriptor, written: [`oci:${dir}${dst.tag ? `:${dst.tag}` : ''}`] };
      }
      case 'docker-archive': {
        if (dst.index !== undefined) throw new UsageError('a docker-archive destination takes FILE[:REF], not @INDEX');
        const tag = dst.ref ?? (sourceName ? familiar(sourceName) : undefined);
        const file = path.resolve(cwd, dst.file);
        const { writeDockerArchive } = await import('../image/archive.js');
        await writeDockerArchive({ file, store: opts.store, manifest: descriptor, repoTags: tag ? [tag] : [] });
        return { digest: descriptor.digest, descriptor, written: [`docker-archive:${file}`] };
      }
    }
  } finally {
    session.close();
  }
}
