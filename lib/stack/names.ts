/**
 * Image names and tags as idpbuilder's Gitea accepts them, checked before any
 * build work so that a bad name fails in a second, not after a build.
 *
 * Gitea's container registry (routers/api/packages/container/container.go,
 * `imageNamePattern`) accepts `[a-z0-9]+([._-][a-z0-9]+)*` components joined
 * by `/`: stricter than the OCI distribution grammar, which also allows `__`
 * and runs of `-`. The full repository (`giteaadmin/<name>`) must stay within
 * distribution's 255 characters. Tags follow distribution's tag grammar, which
 * Gitea checks too (`oci.Reference`).
 */
import * as path from 'node:path';

/** The owner idpbuilder's images live under (Gitea lowercases user names in registry paths). */
export const STACK_OWNER = 'giteaadmin';

const GITEA_IMAGE_NAME_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const MAX_REPOSITORY = 255;

/** Why `name` is not a valid Gitea image name below the owner, or undefined when it is. */
export function imageNameProblem(name: string, owner = STACK_OWNER): string | undefined {
  if (!name) return 'the name is empty';
  if (!GITEA_IMAGE_NAME_RE.test(name)) {
    if (GITEA_IMAGE_NAME_RE.test(name.toLowerCase())) return `"${name}" has capital letters (Gitea image names are lowercase)`;
    return `"${name}" is not a Gitea image name (lowercase letters and digits, separated by one ".", "_" or "-", path parts by "/")`;
  }
  if (`${owner}/${name}`.length > MAX_REPOSITORY) return `"${owner}/${name}" is longer than ${MAX_REPOSITORY} characters`;
  return undefined;
}

export function tagProblem(tag: string): string | undefined {
  return TAG_RE.test(tag)
    ? undefined
    : `tag "${tag}" is invalid (up to 128 letters, digits, "_", "." and "-", not starting with "." or "-")`;
}

/** A name Gitea would accept that is close to `name` (for hints), or undefined. */
export function suggestImageName(name: string): string | undefined {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9._/-]+/g, '-')
    .replace(/[._-]{2,}/g, '-')
    .split('/')
    .map((p) => p.replace(/^[._-]+|[._-]+$/g, ''))
    .filter(Boolean)
    .join('/');
  return s && !imageNameProblem(s) ? s : undefined;
}

const DOCKERFILE_NAMES = new Set(['Dockerfile', 'Containerfile']);
const SUFFIX = '.Dockerfile';

/** Whether a file name is one discovery builds: `Dockerfile`, `Containerfile`, `NAME.Dockerfile`. */
export function isDockerfileName(base: string): boolean {
  return DOCKERFILE_NAMES.has(base) || (base.endsWith(SUFFIX) && base.length > SUFFIX.length);
}

/** The default image name of a Dockerfile: `NAME.Dockerfile` gives NAME, else the directory's name. */
export function defaultImageName(dockerfile: string): string {
  const base = path.basename(dockerfile);
  if (base.endsWith(SUFFIX) && base.length > SUFFIX.length) return base.slice(0, -SUFFIX.length);
  return path.basename(path.dirname(dockerfile));
}
