/**
 * Image references, parsed and normalised the way docker does:
 * `busybox` is `docker.io/library/busybox:latest`, `localhost:5000/a/b@sha256:…`
 * keeps its host and port, and a reference may carry both a tag and a digest
 * (the digest wins when pulling).
 */
import { OcistackError } from '../errors.js';
import { isDigest } from '../image/digest.js';
import type { Digest } from '../image/types.js';

export const DOCKER_HUB = 'docker.io';
/** Where docker.io's API actually answers. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface ImageReference {
  /** `host` or `host:port`; `docker.io` for Docker Hub. */
  registry: string;
  /** Path inside the registry, e.g. `library/busybox`, `giteaadmin/app`. */
  repository: string;
  tag?: string;
  digest?: Digest;
  /** `registry/repository[:tag][@digest]`. */
  toString(): string;
}

// distribution/reference grammar.
const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;

function badRef(ref: string, why: string, hint: string): OcistackError {
  return new OcistackError(`invalid image reference "${ref}": ${why}`, { code: 'BAD_REFERENCE', hint, exitCode: 2 });
}

class Ref implements ImageReference {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly tag?: string,
    readonly digest?: Digest,
  ) {}
  toString(): string {
    return `${this.registry}/${this.repository}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }
}

/** Build a reference from parts (no validation beyond what the parts already passed). */
export function makeReference(registry: string, repository: string, tag?: string, digest?: Digest): ImageReference {
  return new Ref(registry, repository, tag, digest);
}

/**
 * Parse `[host[:port]/]path[:tag][@digest]`. The first path component is a
 * host when it contains `.` or `:` or is `localhost` (docker's rule). Without
 * tag and digest the tag is `latest`. Gitea-like hosts (see
 * {@link isGiteaLike}) also get Gitea's `owner/image` rule.
 */
export function parseReference(ref: string): ImageReference {
  const input = ref.trim();
  if (!input) throw badRef(ref, 'it is empty', 'write e.g. gitea.cnoe.localtest.me:8443/giteaadmin/app:1');
  if (/^[a-z]+:\/\//.test(input)) {
    throw badRef(ref, 'it has a URL scheme', 'drop the scheme: write "host:port/owner/image:tag"');
  }
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw badRef(ref, `"${d}" is not a sha256 digest`, 'digests are "sha256:" and 64 lowercase hex characters');
    digest = d;
    rest = rest.slice(0, at);
  }
  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      if (!HOST_RE.test(first)) throw badRef(ref, `"${first}" is not a valid registry host`, 'write host or host:port');
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && !rest.slice(colon).includes('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw badRef(ref, `tag "${tag}" is invalid`, 'tags are up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  let repository = rest;
  if (!repository) throw badRef(ref, 'the image name is empty', 'write host/owner/image:tag');
  const components = repository.split('/');
  for (const c of components) {
    if (!COMPONENT_RE.test(c)) {
      const lower = c.toLowerCase();
      const hint = COMPONENT_RE.test(lower)
        ? `repository names must be lowercase: write "${repository.toLowerCase()}"`
        : 'path components are lowercase letters and digits separated by ".", "_", "__" or "-"';
      throw badRef(ref, `repository component "${c}" is invalid`, hint);
    }
  }
  if (registry === DOCKER_HUB && components.length === 1) repository = `library/${repository}`;
  if (repository.length > 255) throw badRef(ref, 'the repository name is longer than 255 characters', 'shorten the image name');
  if (isGiteaLike(registry) && repository.split('/').length < 2) {
    throw badRef(
      ref,
      `Gitea registry ${registry} needs "owner/image", got "${repository}"`,
      `write ${registry}/giteaadmin/${repository}${tag ? `:${tag}` : ''} (the owner is a Gitea user or organisation)`,
    );
  }
  if (!tag && !digest) tag = 'latest';
  return new Ref(registry, repository, tag, digest);
}

/** `host` without the port (IPv6 brackets kept). */
export function hostnameOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(0, registry.indexOf(']') + 1);
  const c = registry.lastIndexOf(':');
  return c >= 0 ? registry.slice(0, c) : registry;
}

/**
 * Whether a registry is Gitea-like and gets Gitea's naming rule (`owner/image`,
 * lowercase). Decided by name, since nothing in the /v2/ answer says "Gitea"
 * reliably: IDPBuilder's host `*.cnoe.localtest.me`, any host whose name
 * contains `gitea`, and hosts listed in `OCISTACK_GITEA_HOSTS` (comma-separated).
 */
export function isGiteaLike(registry: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const host = hostnameOf(registry).toLowerCase();
  if (host === 'cnoe.localtest.me' || host.endsWith('.cnoe.localtest.me')) return true;
  if (host.includes('gitea')) return true;
  const extra = (env.OCISTACK_GITEA_HOSTS ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  return extra.includes(registry.toLowerCase()) || extra.includes(host);
}

/** The host the HTTP API of a registry answers on (docker.io → registry-1.docker.io). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** Same reference with another tag/digest. */
export function withTagOrDigest(ref: ImageReference, tagOrDigest: string): ImageReference {
  return isDigest(tagOrDigest)
    ? new Ref(ref.registry, ref.repository, undefined, tagOrDigest)
    : new Ref(ref.registry, ref.repository, tagOrDigest, undefined);
}
