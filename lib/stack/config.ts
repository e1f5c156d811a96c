/**
 * `ocistack.yaml` at a stack's root: the images to build, named explicitly
 * (docs/stacks.md "## ocistack.yaml"). Optional; an entry overrides what
 * discovery finds for the same Dockerfile or the same name.
 *
 * Validation is strict and happens before any build work: every problem is an
 * OcistackError `STACK_CONFIG` naming ocistack.yaml:line:column and the fix.
 * Unknown keys are errors (a typo like `buildArg` must not be ignored
 * silently), and no path may leave the stack directory, since idpbuilder
 * only ever sees what is inside it.
 */
import { realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { isMap, isScalar, isSeq } from 'yaml';
import type { Node } from 'yaml';
import { OcistackError } from '../errors.js';
import { defaultImageName, imageNameProblem, suggestImageName, tagProblem } from './names.js';
import { displayPath, firstError, nodeLocation, readYamlFile } from './yaml-file.js';
import type { YamlFile } from './yaml-file.js';
import type { StackLocation } from './types.js';

export const CONFIG_FILE = 'ocistack.yaml';
export const CONFIG_VERSION = 1;

/** One validated `images:` entry; paths absolute. */
export interface StackConfigImage {
  name: string;
  context: string;
  dockerfile: string;
  target?: string;
  buildArgs: Record<string, string>;
  /** Undefined when the entry gives none (then the manifests' tags, else `latest`). */
  tags?: string[];
  platform?: string;
  /** Files (absolute) the entry says use the image; scanned for references too. */
  manifests: string[];
  location: StackLocation;
}

export interface StackConfig {
  file: string;
  version: 1;
  images: StackConfigImage[];
}

const TOP_KEYS = ['version', 'images'];
const IMAGE_KEYS = ['name', 'context', 'dockerfile', 'target', 'buildArgs', 'tags', 'platform', 'manifests'];
const PLATFORM_RE = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;

function configError(message: string, location: StackLocation, hint: string): OcistackError {
  return new OcistackError(message, { code: 'STACK_CONFIG', location: { ...location, file: displayPath(location.file) }, hint });
}

/** Edit distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function unknownKeyHint(key: string, allowed: string[]): string {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const close = allowed.find((k) => norm(k) === norm(key)) ?? allowed.find((k) => distance(k, key) <= 2);
  return close ? `did you mean "${close}"? allowed keys: ${allowed.join(', ')}` : `allowed keys: ${allowed.join(', ')}`;
}

class Validator {
  constructor(
    readonly y: YamlFile,
    readonly root: string,
  ) {}

  at(node: Node | null | undefined): StackLocation {
    return nodeLocation(this.y, node);
  }

  string(node: Node | null | undefined, what: string, keyNode: Node): string {
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '') {
      throw configError(`${what} must be a non-empty string`, this.at(node ?? keyNode), `write ${what}: "..."`);
    }
    return node.value;
  }

  /** A path relative to `base` that must stay inside the stack (after symlinks) and exist as `kind`. */
  insidePath(node: Node | null | undefined, what: string, keyNode: Node, base: string, kind: 'dir' | 'file'): string {
    const rel = this.string(node, what, keyNode);
    const loc = this.at(node);
    if (path.isAbsolute(rel)) {
      throw configError(`${what} "${rel}" is absolute`, loc, `write it relative to ${base === this.root ? 'the stack directory' : 'the context'}`);
    }
    const abs = path.resolve(base, rel);
    const escapes = (p: string): boolean => {
      const r = path.relative(this.root, p);
      return r === '..' || r.startsWith(`..${path.sep}`) || path.isAbsolute(r);
    };
    if (escapes(abs)) {
      throw configError(`${what} "${rel}" is outside the stack directory`, loc,
        'idpbuilder only copies the stack directory: move the files into it, or make the stack directory their parent');
    }
    let st;
    try {
      st = statSync(abs);
    } catch {
      throw configError(`${what} "${rel}" does not exist (${displayPath(abs)})`, loc, `create it, or fix the path (relative to ${base === this.root ? 'the stack directory' : 'the context'})`);
    }
    if (kind === 'dir' ? !st.isDirectory() : !st.isFile()) {
      throw configError(`${what} "${rel}" is not a ${kind === 'dir' ? 'directory' : 'file'}`, loc, `point ${what} at a ${kind === 'dir' ? 'directory' : 'file'}`);
    }
    if (escapes(realpathSync(abs))) {
      throw configError(`${what} "${rel}" is a symbolic link out of the stack directory`, loc, 'idpbuilder only copies the stack directory: copy the files into it');
    }
    return abs;
  }

  keys(node: Node, allowed: string[], where: string): Map<string, { key: Node; value: Node | null }> {
    const out = new Map<string, { key: Node; value: Node | null }>();
    if (!isMap(node)) return out;
    for (const pair of node.items) {
      const key = pair.key as Node;
      const name = isScalar(key) ? String(key.value) : '';
      if (!allowed.includes(name)) {
        throw configError(`unknown key "${name}" in ${where}`, this.at(key), unknownKeyHint(name, allowed));
      }
      if (out.has(name)) throw configError(`key "${name}" given twice in ${where}`, this.at(key), 'keep one of them');
      out.set(name, { key, value: (pair.value ?? null) as Node | null });
    }
    return out;
  }

  image(node: Node, index: number): StackConfigImage {
    const where = `images[${index}]`;
    if (!isMap(node)) {
      throw configError(`${where} must be a mapping`, this.at(node), 'write "- name: NAME" and "context: DIR" under images:');
    }
    const k = this.keys(node, IMAGE_KEYS, where);
    const ctx = k.get('context');
    if (!ctx) {
      throw configError(`${where} has no context`, this.at(node), 'add "context: DIR" (the build context, relative to the stack directory)');
    }
    const context = this.insidePath(ctx.value, `${where}.context`, ctx.key, this.root, 'dir');
    const df = k.get('dockerfile');
    const dockerfile = df
      ? this.insidePath(df.value, `${where}.dockerfile`, df.key, context, 'file')
      : this.defaultDockerfile(context, ctx.value!);
    const n = k.get('name');
    const name = n ? this.string(n.value, `${where}.name`, n.key) : defaultImageName(dockerfile);
    const problem = imageNameProblem(name);
    if (problem) {
      const better = suggestImageName(name);
      throw configError(`${where}: image name ${problem}`, this.at(n?.value ?? node), better ? `write name: ${better}` : 'write a name like "hello" or "team/api"');
    }
    const image: StackConfigImage = { name, context, dockerfile, buildArgs: {}, manifests: [], location: this.at(node) };
    const target = k.get('target');
    if (target) image.target = this.string(target.value, `${where}.target`, target.key);
    const platform = k.get('platform');
    if (platform) {
      image.platform = this.string(platform.value, `${where}.platform`, platform.key);
      if (!PLATFORM_RE.test(image.platform)) {
        throw configError(`${where}.platform "${image.platform}" is not os/arch[/variant]`, this.at(platform.value), 'write e.g. platform: linux/amd64');
      }
    }
    const args = k.get('buildArgs');
    if (args) {
      if (!isMap(args.value)) {
        throw configError(`${where}.buildArgs must be a mapping`, this.at(args.value ?? args.key), 'write buildArgs: { NAME: "value" }');
      }
      for (const pair of args.value.items) {
        const key = pair.key as Node;
        const v = pair.value as Node | null;
        const argName = isScalar(key) ? String(key.value) : '';
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(argName)) {
          throw configError(`${where}.buildArgs: "${argName}" is not a build argument name`, this.at(key), 'names are letters, digits and "_"');
        }
        if (!isScalar(v) || v.value === null || typeof v.value === 'object') {
          throw configError(`${where}.buildArgs.${argName} must be a string`, this.at(v ?? key), `write ${argName}: "value"`);
        }
        // Numbers and booleans are written back as the user spelled them (`1.10` stays "1.10").
        image.buildArgs[argName] = typeof v.value === 'string' ? v.value : v.source ?? String(v.value);
      }
    }
    const tags = k.get('tags');
    if (tags) {
      if (!isSeq(tags.value) || tags.value.items.length === 0) {
        throw configError(`${where}.tags must be a non-empty list`, this.at(tags.value ?? tags.key), 'write tags: [v1] (or leave tags out)');
      }
      image.tags = [];
      for (const t of tags.value.items as Node[]) {
        const tag = isScalar(t) && t.value !== null && typeof t.value !== 'object' ? (typeof t.value === 'string' ? t.value : t.source ?? String(t.value)) : undefined;
        if (tag === undefined) throw configError(`${where}.tags: each tag must be a string`, this.at(t), 'write tags: ["1.0", latest]');
        const tp = tagProblem(tag);
        if (tp) throw configError(`${where}.tags: ${tp}`, this.at(t), 'write tags like "v1" or "1.0.2"');
        if (!image.tags.includes(tag)) image.tags.push(tag);
      }
    }
    const manifests = k.get('manifests');
    if (manifests) {
      if (!isSeq(manifests.value)) {
        throw configError(`${where}.manifests must be a list`, this.at(manifests.value ?? manifests.key), 'write manifests: [apps/hello/deployment.yaml]');
      }
      for (const m of manifests.value.items as Node[]) {
        image.manifests.push(this.insidePath(m, `${where}.manifests`, manifests.key, this.root, 'file'));
      }
    }
    return image;
  }

  defaultDockerfile(context: string, ctxNode: Node): string {
    const f = path.join(context, 'Dockerfile');
    try {
      if (statSync(f).isFile()) return f;
    } catch {
      /* reported below */
    }
    throw configError(`no Dockerfile in context ${displayPath(context)}`, this.at(ctxNode), 'add "dockerfile: FILE" (relative to the context)');
  }
}

/** Parse and validate `<root>/ocistack.yaml`; undefined when there is none. `root` is absolute and real. */
export async function loadStackConfig(root: string): Promise<StackConfig | undefined> {
  const file = path.join(root, CONFIG_FILE);
  let y: YamlFile;
  try {
    y = await readYamlFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OcistackError(`cannot read ${displayPath(file)}: ${(e as Error).message}`, { code: 'STACK_CONFIG', cause: e });
  }
  return validateStackConfig(y, root);
}

export function validateStackConfig(y: YamlFile, root: string): StackConfig {
  const v = new Validator(y, root);
  const start: StackLocation = { file: y.file, line: 1, column: 1 };
  if (y.docs.length === 0 || y.docs[0]!.contents === null) {
    throw configError('ocistack.yaml is empty', start, `write "version: ${CONFIG_VERSION}" and an "images:" list, or delete the file`);
  }
  if (y.docs.length > 1) {
    throw configError('ocistack.yaml holds more than one YAML document', nodeLocation(y, y.docs[1]!.contents), 'keep one document (remove the second "---")');
  }
  const doc = y.docs[0]!;
  const err = firstError(y, doc);
  if (err) throw configError(`YAML syntax: ${err.message}`, err.location, 'fix the YAML syntax at that place');
  const top = doc.contents as Node;
  if (!isMap(top)) throw configError('ocistack.yaml must be a mapping', v.at(top), `write "version: ${CONFIG_VERSION}" and "images:"`);
  const k = v.keys(top, TOP_KEYS, 'ocistack.yaml');
  const ver = k.get('version');
  if (!ver) throw configError('ocistack.yaml has no version', v.at(top), `add "version: ${CONFIG_VERSION}" as the first line`);
  if (!isScalar(ver.value) || ver.value.value !== CONFIG_VERSION) {
    throw configError(`unsupported ocistack.yaml version ${isScalar(ver.value) ? JSON.stringify(ver.value.value) : ''}`.trimEnd(), v.at(ver.value ?? ver.key),
      `this ocistack reads version ${CONFIG_VERSION}: write "version: ${CONFIG_VERSION}"`);
  }
  const images: StackConfigImage[] = [];
  const list = k.get('images');
  if (list && list.value !== null) {
    if (!isSeq(list.value)) throw configError('images must be a list', v.at(list.value), 'write "images:" followed by "- name: ..." entries');
    const byName = new Map<string, StackConfigImage>();
    const byDockerfile = new Map<string, StackConfigImage>();
    list.value.items.forEach((item, i) => {
      const img = v.image(item as Node, i);
      const sameName = byName.get(img.name);
      if (sameName) {
        throw configError(`image name "${img.name}" is used twice (also at line ${sameName.location.line})`, img.location, 'give each image its own name');
      }
      const sameFile = byDockerfile.get(`${img.dockerfile}\0${img.target ?? ''}`);
      if (sameFile) {
        throw configError(`images[${i}] builds the same Dockerfile and target as line ${sameFile.location.line}`, img.location,
          'merge the two entries (list both tags under tags:) or give them different targets');
      }
      byName.set(img.name, img);
      byDockerfile.set(`${img.dockerfile}\0${img.target ?? ''}`, img);
      images.push(img);
    });
  }
  return { file: y.file, version: CONFIG_VERSION, images };
}
