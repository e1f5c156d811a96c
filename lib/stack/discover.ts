/**
 * `discoverStack`: what a stack directory holds (docs/stacks.md "## Discovery").
 *
 * The apps and their cnoe:// directories as idpbuilder reads them (apps.ts),
 * the Dockerfiles under the stack and those directories, the ocistack.yaml
 * entries that override them (config.ts), and the manifests' references to
 * the stack's registry tied to the images (references.ts). Every image name
 * is checked against Gitea's rules here, so nothing is built before a bad
 * name is reported.
 */
import { realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';
import { readStackApps } from './apps.js';
import { CONFIG_FILE, loadStackConfig } from './config.js';
import { STACK_OWNER, defaultImageName, imageNameProblem, isDockerfileName, suggestImageName } from './names.js';
import { DEFAULT_STACK_REGISTRIES, scanReferences } from './references.js';
import { walkFiles } from './walk.js';
import { displayPath } from './yaml-file.js';
import type { ManifestReference, StackImage, StackModel, StackWarning } from './types.js';

export interface DiscoverStackOptions {
  /** The stack directory (what `idpbuilder create -p` is given). */
  dir: string;
  /**
   * Registry hosts (`host:port`) whose references belong to the stack.
   * Default: idpbuilder's two forms, `gitea.cnoe.localtest.me:8443` and
   * `cnoe.localtest.me:8443` (path routing). Pass `GiteaTarget.registry`.
   */
  registries?: string[];
  /** Read `<dir>/ocistack.yaml` (default true). */
  config?: boolean;
}

/** The repository an image of the stack is pushed to, below the registry. */
export function stackRepository(name: string): string {
  return `${STACK_OWNER}/${name}`;
}

async function stackRoot(dir: string): Promise<string> {
  const shown = displayPath(path.resolve(dir));
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new OcistackError(`stack directory ${shown} does not exist`, {
      code: 'STACK_DIR',
      hint: 'give the directory you pass to "idpbuilder create -p"',
      exitCode: 2,
    });
  }
  if (!st.isDirectory()) {
    throw new OcistackError(`${shown} is not a directory`, { code: 'STACK_DIR', hint: 'give the stack directory, not a file in it', exitCode: 2 });
  }
  return realpath(dir);
}

function badDiscoveredName(image: StackImage, problem: string, root: string): OcistackError {
  const better = suggestImageName(image.name) ?? 'hello';
  const context = path.relative(root, image.context) || '.';
  const from = path.basename(image.dockerfile).endsWith('.Dockerfile') ? 'its file name' : 'its directory';
  return new OcistackError(`the image name this Dockerfile gets from ${from} is invalid: ${problem}`, {
    code: 'STACK_IMAGE_NAME',
    location: { file: displayPath(image.dockerfile), line: 1 },
    hint: `name it in ${CONFIG_FILE} (version: 1): images: [{ name: ${better}, context: ${context}, dockerfile: ${path.basename(image.dockerfile)} }], or rename ${from === 'its directory' ? 'the directory' : 'the file'}`,
  });
}

/** The repository of a reference with the owner lowercased (what Gitea stores). */
function canonicalRepository(ref: ManifestReference): string {
  const i = ref.repository.indexOf('/');
  return `${ref.repository.slice(0, i).toLowerCase()}${ref.repository.slice(i)}`;
}

export async function discoverStack(opts: DiscoverStackOptions): Promise<StackModel> {
  const root = await stackRoot(opts.dir);
  const registries = opts.registries ?? DEFAULT_STACK_REGISTRIES;
  const { apps, warnings } = await readStackApps(root);
  const config = opts.config === false ? undefined : await loadStackConfig(root);

  // Dockerfiles under the stack and under cnoe directories outside it (cnoe://../x).
  const outside = apps.flatMap((a) => a.cnoeDirs.map((c) => c.dir)).filter((d) => path.relative(root, d).startsWith('..'));
  const dockerfiles = await walkFiles([root, ...new Set(outside)], isDockerfileName);

  const images: StackImage[] = [];
  const configured = config?.images ?? [];
  for (const c of configured) {
    images.push({
      name: c.name,
      context: c.context,
      dockerfile: c.dockerfile,
      ...(c.target !== undefined ? { target: c.target } : {}),
      buildArgs: c.buildArgs,
      tags: c.tags ?? [],
      ...(c.platform !== undefined ? { platform: c.platform } : {}),
      origin: { kind: 'config', location: c.location },
      usedBy: [],
    });
  }
  const discovered: StackImage[] = [];
  for (const dockerfile of dockerfiles) {
    const name = defaultImageName(dockerfile);
    // An explicit entry for the same Dockerfile or the same name wins (that is how a bad default name is fixed).
    if (configured.some((c) => c.dockerfile === dockerfile || c.name === name)) continue;
    const image: StackImage = { name, context: path.dirname(dockerfile), dockerfile, buildArgs: {}, tags: [], origin: { kind: 'discovered' }, usedBy: [] };
    const problem = imageNameProblem(name);
    if (problem) throw badDiscoveredName(image, problem, root);
    const twin = discovered.find((d) => d.name === name);
    if (twin) {
      throw new OcistackError(`two Dockerfiles give the image name "${name}": ${displayPath(twin.dockerfile)} and ${displayPath(dockerfile)}`, {
        code: 'STACK_IMAGE_NAME',
        location: { file: displayPath(dockerfile), line: 1 },
        hint: `name one of them in ${CONFIG_FILE} (images: [{ name: ..., context: ${path.relative(root, path.dirname(dockerfile)) || '.'}, dockerfile: ${path.basename(dockerfile)} }])`,
      });
    }
    discovered.push(image);
  }
  images.push(...discovered);

  const scan = await scanReferences({ root, apps, registries, extraFiles: configured.flatMap((c) => c.manifests) });
  warnings.push(...scan.warnings);
  const byRepository = new Map(images.map((i) => [stackRepository(i.name), i]));
  const unmatched: ManifestReference[] = [];
  for (const ref of scan.references) {
    const owner = ref.repository.slice(0, ref.repository.indexOf('/'));
    const image = byRepository.get(canonicalRepository(ref));
    if (owner !== owner.toLowerCase() && owner.toLowerCase() === STACK_OWNER) {
      warnings.push({
        message: `${ref.text}: Kubernetes rejects capitals in image names (InvalidImageName); write ${STACK_OWNER} (Gitea's registry path for the user ${owner})`,
        location: ref.location,
      });
    }
    if (image) {
      image.usedBy.push(ref);
    } else {
      unmatched.push(ref);
      warnings.push({ message: `${ref.text}: no Dockerfile of the stack builds ${canonicalRepository(ref)}`, location: ref.location });
    }
  }
  for (const image of images) {
    if (image.tags.length === 0) {
      const used = [...new Set(image.usedBy.map((r) => r.tag).filter((t): t is string => t !== undefined))];
      image.tags = used.length > 0 ? used : ['latest'];
    }
    if (image.usedBy.length === 0) {
      warnings.push({
        message: `nothing in the stack's manifests references the image ${image.name} (built from ${displayPath(image.dockerfile)})`,
        location: image.origin.kind === 'config' ? image.origin.location : { file: image.dockerfile, line: 1 },
      });
    }
  }
  for (const c of configured) {
    const image = images.find((i) => i.name === c.name)!;
    for (const m of c.manifests) {
      if (!image.usedBy.some((r) => r.location.file === m)) {
        warnings.push({ message: `${displayPath(m)} is listed in manifests: of ${c.name} but does not reference ${stackRepository(c.name)}`, location: c.location });
      }
    }
  }
  return { root, apps, images, unmatched, warnings: onePerPlace(warnings).sort(byPlace) };
}

/** A top-level file with a syntax error is reported by the app reader and the reference scanner: once is enough. */
function onePerPlace(warnings: StackWarning[]): StackWarning[] {
  const seen = new Set<string>();
  return warnings.filter((w) => {
    if (!w.location || !w.message.includes('YAML syntax')) return true;
    const key = `${w.location.file}:${w.location.line}:${w.location.column ?? 0}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function byPlace(a: StackWarning, b: StackWarning): number {
  const fa = a.location?.file ?? '';
  const fb = b.location?.file ?? '';
  if (fa !== fb) return fa < fb ? -1 : 1;
  return (a.location?.line ?? 0) - (b.location?.line ?? 0) || (a.location?.column ?? 0) - (b.location?.column ?? 0);
}
