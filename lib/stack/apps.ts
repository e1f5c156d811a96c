/**
 * The ArgoCD apps of a stack directory, read the way idpbuilder reads them
 * (cnoe-io/idpbuilder: pkg/controllers/localbuild `reconcileCustomPkgDir`,
 * pkg/controllers/custompackage `reconcileArgoCDApp`/`reconcileArgoCDAppSet`):
 *
 *  - only the top level of the directory: regular files (not symlinks) ending
 *    in `.yaml`/`.yml`; the first YAML document of each; kept when its
 *    apiVersion's group is `argoproj.io` and its kind Application or
 *    ApplicationSet. A file idpbuilder cannot decode is logged and skipped by
 *    idpbuilder: here it is a warning.
 *  - `cnoe://PATH` counts in `spec.sources[].repoURL` (when `sources` is not
 *    empty, `source` is ignored, as ArgoCD's HasMultipleSources does), else
 *    `spec.source.repoURL`; in every string under a source's
 *    `helm.valuesObject`; in an ApplicationSet's `spec.generators[].git.repoURL`
 *    and one level down in `matrix.generators[].git.repoURL`; and in the
 *    template's `spec` like an Application. `valueFiles` and list/merge
 *    generators are not rewritten by idpbuilder, so not here either.
 *  - PATH is relative to the YAML file's directory (may leave it, as in
 *    cnoe-io/stacks' `cnoe://../base/x`) and must be a directory. idpbuilder
 *    fails that package's reconcile ("path not a directory") and the app never
 *    syncs, so here it is an error (`STACK_CNOE_PATH`) with file:line:column,
 *    raised before any build work.
 */
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { isMap, isScalar, isSeq } from 'yaml';
import type { Node } from 'yaml';
import { OcistackError } from '../errors.js';
import { CONFIG_FILE } from './config.js';
import { child, childPath, displayPath, firstError, itemsOf, nodeLocation, readYamlFile, stringOf } from './yaml-file.js';
import type { YamlFile } from './yaml-file.js';
import type { StackApp, StackLocation, StackWarning } from './types.js';

export const CNOE_SCHEME = 'cnoe://';

export function isYamlName(name: string): boolean {
  // idpbuilder: filepath.Ext(name) == ".yaml" || ".yml" (case-sensitive).
  const ext = path.extname(name);
  return ext === '.yaml' || ext === '.yml';
}

/** The top-level YAML files of a stack directory, as idpbuilder lists them (sorted). */
export async function topLevelYamlFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && isYamlName(e.name))
    .map((e) => path.join(root, e.name))
    .sort();
}

interface SourceInfo {
  node: Node;
  cnoeDir?: string;
  ref?: string;
}

class AppReader {
  readonly cnoeDirs: StackApp['cnoeDirs'] = [];
  readonly valueFiles: NonNullable<StackApp['valueFiles']> = [];

  constructor(readonly y: YamlFile) {}

  async cnoe(node: Node | undefined): Promise<string | undefined> {
    const url = stringOf(node);
    if (url === undefined || !url.startsWith(CNOE_SCHEME)) return undefined;
    const location = nodeLocation(this.y, node);
    const rel = url.slice(CNOE_SCHEME.length);
    const dir = path.resolve(path.dirname(this.y.file), rel);
    const shown: StackLocation = { ...location, file: displayPath(location.file) };
    let st;
    try {
      st = await stat(dir);
    } catch {
      throw new OcistackError(`${url}: ${displayPath(dir)} does not exist`, {
        code: 'STACK_CNOE_PATH',
        location: shown,
        hint: `cnoe:// paths are relative to ${displayPath(path.dirname(this.y.file))} and name a directory: create it or fix the path`,
      });
    }
    if (!st.isDirectory()) {
      throw new OcistackError(`${url}: ${displayPath(dir)} is not a directory`, {
        code: 'STACK_CNOE_PATH',
        location: shown,
        hint: 'idpbuilder copies a whole directory into Gitea: point cnoe:// at the directory holding the manifests',
      });
    }
    if (!this.cnoeDirs.some((c) => c.dir === dir)) this.cnoeDirs.push({ dir, location });
    return dir;
  }

  /** Every string anywhere under a node (helm.valuesObject). */
  async strings(node: unknown): Promise<void> {
    if (isScalar(node)) await this.cnoe(node);
    else if (isMap(node)) for (const p of node.items) await this.strings(p.value);
    else if (isSeq(node)) for (const i of node.items) await this.strings(i);
  }

  async source(node: Node): Promise<SourceInfo> {
    const cnoeDir = await this.cnoe(child(node, 'repoURL'));
    await this.strings(childPath(node, ['helm', 'valuesObject']));
    return { node, cnoeDir, ref: stringOf(child(node, 'ref')) };
  }

  /** An Application spec (or an ApplicationSet template's spec). */
  async appSpec(spec: Node | undefined): Promise<void> {
    if (!spec) return;
    const many = itemsOf(child(spec, 'sources'));
    const sources: SourceInfo[] = [];
    if (many.length > 0) for (const s of many) sources.push(await this.source(s as Node));
    else if (isMap(child(spec, 'source'))) sources.push(await this.source(child(spec, 'source')!));
    await this.valueFilesOf(sources);
  }

  /** helm.valueFiles that land in a cnoe directory: `$ref/...` via the source with that ref, else the source's own path. */
  async valueFilesOf(sources: SourceInfo[]): Promise<void> {
    for (const s of sources) {
      for (const vf of itemsOf(childPath(s.node, ['helm', 'valueFiles']))) {
        const name = stringOf(vf);
        if (!name) continue;
        let file: string | undefined;
        const m = /^\$([^/]+)\/(.*)$/.exec(name);
        if (m) {
          const refSource = sources.find((o) => o.ref === m[1] && o.cnoeDir);
          if (refSource) file = path.resolve(refSource.cnoeDir!, m[2]!);
        } else if (s.cnoeDir) {
          file = path.resolve(s.cnoeDir, stringOf(child(s.node, 'path')) ?? '.', name);
        }
        if (!file || this.valueFiles.some((v) => v.file === file)) continue;
        try {
          if ((await stat(file)).isFile()) this.valueFiles.push({ file, location: nodeLocation(this.y, vf as Node) });
        } catch {
          /* ArgoCD reports a missing values file itself; nothing to scan here. */
        }
      }
    }
  }

  async generators(list: Node | undefined): Promise<void> {
    for (const g of itemsOf(list)) {
      await this.cnoe(childPath(g, ['git', 'repoURL']));
      for (const inner of itemsOf(childPath(g, ['matrix', 'generators']))) {
        await this.cnoe(childPath(inner, ['git', 'repoURL']));
      }
    }
  }
}

/** Read one top-level file: the app it holds, or undefined (with a warning when idpbuilder could not read it either). */
async function readApp(file: string, warnings: StackWarning[]): Promise<StackApp | undefined> {
  const y = await readYamlFile(file);
  const doc = y.docs[0];
  if (!doc) return undefined;
  const err = firstError(y, doc);
  if (err) {
    warnings.push({ message: `not an app idpbuilder can read (YAML syntax: ${err.message})`, location: err.location });
    return undefined;
  }
  const top = doc.contents;
  const apiVersion = stringOf(child(top, 'apiVersion'));
  const kind = stringOf(child(top, 'kind'));
  if (!apiVersion?.startsWith('argoproj.io/') || (kind !== 'Application' && kind !== 'ApplicationSet')) return undefined;
  const name = stringOf(childPath(top, ['metadata', 'name'])) ?? path.basename(file, path.extname(file));
  const reader = new AppReader(y);
  const spec = child(top, 'spec');
  if (kind === 'Application') {
    await reader.appSpec(spec);
  } else {
    await reader.generators(child(spec, 'generators'));
    await reader.appSpec(childPath(spec, ['template', 'spec']));
  }
  return { file, kind, name, cnoeDirs: reader.cnoeDirs, valueFiles: reader.valueFiles };
}

/** The apps of a stack directory (absolute, real path), in file-name order. */
export async function readStackApps(root: string): Promise<{ apps: StackApp[]; warnings: StackWarning[] }> {
  const apps: StackApp[] = [];
  const warnings: StackWarning[] = [];
  for (const file of await topLevelYamlFiles(root)) {
    if (path.basename(file) === CONFIG_FILE) continue;
    const app = await readApp(file, warnings);
    if (app) apps.push(app);
  }
  return { apps, warnings };
}
