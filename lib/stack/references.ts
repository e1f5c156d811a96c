/**
 * References to the stack's registry in the stack's Kubernetes YAML: what
 * `stack list` shows per image and what `--pin --write` rewrites.
 *
 * Which files: the top-level YAML of the stack directory (the apps, whose
 * `helm.valuesObject` may name images), every `*.yaml`/`*.yml` under the
 * apps' cnoe:// directories (what idpbuilder copies into Gitea and ArgoCD
 * deploys), the Helm values files the apps name, and files an ocistack.yaml
 * entry lists. Inside a Helm chart (a directory with Chart.yaml) `templates/`
 * is skipped (Go templates, not YAML) and the other YAML files count as values.
 *
 * Which shapes, each with the exact offsets of its text:
 *  - any string value that is a whole reference `REGISTRY/owner/name[:tag][@digest]`
 *    (containers' `image:`, Helm's `image: "ref"`, CRDs alike), in every document of a file;
 *  - Helm's `image: { repository: REGISTRY/owner/name, tag: T }` (pinned by rewriting `tag`);
 *  - kustomization `images:` entries whose `newName` (else `name`) is in the registry,
 *    with `newTag` and `digest` (pinned through `digest:`).
 *
 * The registry host matches case-insensitively (DNS names); the owner is
 * reported as written. Containerd and Kubernetes reject capitals in a
 * repository (`InvalidImageName`), though Gitea itself finds `giteaAdmin`:
 * such a reference is matched to its image and warned about.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { isMap, isScalar, isSeq } from 'yaml';
import type { Node, Scalar, YAMLMap } from 'yaml';
import { isDigest } from '../image/digest.js';
import { isYamlName, topLevelYamlFiles } from './apps.js';
import { CONFIG_FILE } from './config.js';
import { walkFiles } from './walk.js';
import { child, firstError, literalSpan, locationAt, nodeLocation, readYamlFile } from './yaml-file.js';
import type { YamlFile } from './yaml-file.js';
import type { ManifestReference, ReferenceEdit, StackApp, StackWarning } from './types.js';

/** idpbuilder's default registry names: `gitea.<host>:<port>` and, with path routing, `<host>:<port>`. */
export const DEFAULT_STACK_REGISTRIES = ['gitea.cnoe.localtest.me:8443', 'cnoe.localtest.me:8443'];

export interface ScanReferencesOptions {
  /** The stack directory (absolute, real). */
  root: string;
  apps: StackApp[];
  /** Registry hosts (`host:port`) whose references count. */
  registries: string[];
  /** More files to scan (ocistack.yaml `manifests:`). */
  extraFiles?: string[];
}

export interface ScanReferencesResult {
  references: ManifestReference[];
  /** Files that could not be parsed (with their line). */
  warnings: StackWarning[];
  /** Every file scanned (absolute). */
  files: string[];
}

const KUSTOMIZATION = new Set(['kustomization.yaml', 'kustomization.yml', 'Kustomization']);
// After the registry: path components as written (capitals kept, to warn about them), tag, digest.
const REST_RE = /^((?:[A-Za-z0-9]+(?:[._-]+[A-Za-z0-9]+)*)(?:\/[A-Za-z0-9]+(?:[._-]+[A-Za-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$/;

interface Parsed {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** Split `text` when it is a whole reference into one of `registries`. */
export function parseStackReference(text: string, registries: string[]): Parsed | undefined {
  const slash = text.indexOf('/');
  if (slash <= 0) return undefined;
  const host = text.slice(0, slash);
  if (!registries.some((r) => r.toLowerCase() === host.toLowerCase())) return undefined;
  const m = REST_RE.exec(text.slice(slash + 1));
  if (!m || !m[1]!.includes('/')) return undefined;
  return { registry: host, repository: m[1]!, tag: m[2], digest: m[3] };
}

/** The nearest directory at or above `file` (not above `stop`) holding Chart.yaml. */
async function chartDirOf(file: string, stops: string[], cache: Map<string, boolean>): Promise<string | undefined> {
  let dir = path.dirname(file);
  for (;;) {
    let has = cache.get(dir);
    if (has === undefined) {
      has = await stat(path.join(dir, 'Chart.yaml')).then((s) => s.isFile(), () => false);
      cache.set(dir, has);
    }
    if (has) return dir;
    if (stops.includes(dir)) return undefined;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function scalarText(y: YamlFile, node: Scalar): string | undefined {
  if (node.value === null || typeof node.value === 'object') return undefined;
  if (typeof node.value === 'string') return node.value;
  // `tag: 1.10` is a number to YAML; the tag is what was written.
  const r = node.range;
  return r ? y.text.slice(r[0], r[1]) : String(node.value);
}

class FileScanner {
  readonly refs: ManifestReference[] = [];
  /** Scalars already claimed by a Helm or kustomize shape. */
  readonly claimed = new Set<Node>();

  constructor(
    readonly y: YamlFile,
    readonly registries: string[],
    readonly kind: 'manifest' | 'helm-values',
  ) {}

  add(node: Scalar, p: Parsed, kind: ManifestReference['kind'], edit: (span: { start: number; end: number } | undefined) => ReferenceEdit): void {
    const span = literalSpan(this.y, node);
    const text = span ? this.y.text.slice(span.start, span.end) : String(node.value);
    const location = span ? locationAt(this.y, span.start) : nodeLocation(this.y, node);
    this.refs.push({
      location,
      text,
      registry: p.registry,
      repository: p.repository,
      ...(p.tag !== undefined ? { tag: p.tag } : {}),
      ...(p.digest !== undefined ? { digest: p.digest } : {}),
      kind,
      source: { fileSha256: this.y.sha256, span: span ?? { start: node.range?.[0] ?? 0, end: node.range?.[1] ?? 0 }, edit: edit(span) },
    });
  }

  /** kustomization.yaml `images:` (top level of the document). */
  kustomizeImages(top: unknown): void {
    const list = child(top, 'images');
    if (!isSeq(list)) return;
    for (const entry of list.items) {
      if (!isMap(entry)) continue;
      const nameNode = (child(entry, 'newName') ?? child(entry, 'name')) as Node | undefined;
      if (!isScalar(nameNode) || typeof nameNode.value !== 'string') continue;
      const p = parseStackReference(nameNode.value, this.registries);
      if (!p || p.tag || p.digest) continue;
      const tagNode = child(entry, 'newTag');
      const digestNode = child(entry, 'digest');
      const tag = isScalar(tagNode) ? scalarText(this.y, tagNode) : undefined;
      const digest = isScalar(digestNode) && typeof digestNode.value === 'string' ? digestNode.value : undefined;
      this.claimed.add(nameNode);
      this.add(nameNode, { ...p, tag, digest: digest && isDigest(digest) ? digest : undefined }, 'kustomization', () => this.kustomizeEdit(entry, digestNode));
    }
  }

  kustomizeEdit(entry: YAMLMap, digestNode: Node | undefined): ReferenceEdit {
    if (digestNode) {
      const span = isScalar(digestNode) ? literalSpan(this.y, digestNode) : undefined;
      return span ? { kind: 'digest', span } : { kind: 'none', reason: 'its digest: value is not a plain one-line string' };
    }
    if (entry.flow) return { kind: 'none', reason: 'the images: entry is written in flow style ({...}); add "digest:" by hand' };
    const first = entry.items[0]?.key as Node | undefined;
    const last = entry.items[entry.items.length - 1]?.value as Node | undefined;
    if (!first?.range || !last?.range) return { kind: 'none', reason: 'the images: entry is empty' };
    const col = nodeLocation(this.y, first).column ?? 1;
    // After the last value's line (a trailing comment stays where it is).
    const nl = this.y.text.indexOf('\n', last.range[1]);
    return { kind: 'insert-digest', at: nl < 0 ? this.y.text.length : nl, indent: ' '.repeat(col - 1) };
  }

  /** Helm's `{ repository: REF, tag: T }`. */
  helmImage(map: YAMLMap): void {
    const repo = child(map, 'repository');
    if (!isScalar(repo) || typeof repo.value !== 'string' || this.claimed.has(repo)) return;
    const p = parseStackReference(repo.value, this.registries);
    if (!p || p.tag || p.digest) return;
    const tagNode = child(map, 'tag');
    let tag = isScalar(tagNode) ? scalarText(this.y, tagNode) : undefined;
    let digest: string | undefined;
    const at = tag?.indexOf('@') ?? -1;
    if (tag !== undefined && at >= 0) {
      digest = tag.slice(at + 1);
      tag = tag.slice(0, at) || undefined;
    }
    const digestNode = child(map, 'digest');
    if (!digest && isScalar(digestNode) && typeof digestNode.value === 'string' && isDigest(digestNode.value)) digest = digestNode.value;
    this.claimed.add(repo);
    this.add(repo, { ...p, tag, digest: digest && isDigest(digest) ? digest : undefined }, 'helm-values', () => {
      const span = isScalar(tagNode) ? literalSpan(this.y, tagNode) ?? plainNumberSpan(this.y, tagNode) : undefined;
      if (!span) return { kind: 'none', reason: 'no plain tag: value next to repository: (add "tag:" to pin it)' };
      return { kind: 'tag', span, tag: tag ?? '' };
    });
  }

  walk(node: unknown): void {
    if (isMap(node)) {
      this.helmImage(node);
      for (const pair of node.items) this.walk(pair.value);
    } else if (isSeq(node)) {
      for (const item of node.items) this.walk(item);
    } else if (isScalar(node) && typeof node.value === 'string' && !this.claimed.has(node)) {
      const p = parseStackReference(node.value, this.registries);
      if (p) this.add(node, p, this.kind, (span) => (span ? { kind: 'reference', span } : { kind: 'none', reason: 'written with escapes or over several lines' }));
    }
  }
}

/** A number-typed plain scalar (`tag: 1.10`): its source text is its span. */
function plainNumberSpan(y: YamlFile, node: Scalar): { start: number; end: number } | undefined {
  if (node.type !== 'PLAIN' || !node.range) return undefined;
  return { start: node.range[0], end: node.range[1] };
}

/** Scan one file. `kind` says whether it is a Helm values file. */
export async function scanFile(file: string, registries: string[], kind: 'manifest' | 'helm-values'): Promise<{ references: ManifestReference[]; warnings: StackWarning[] }> {
  const y = await readYamlFile(file);
  const warnings: StackWarning[] = [];
  const refs: ManifestReference[] = [];
  for (const doc of y.docs) {
    const err = firstError(y, doc);
    if (err) {
      warnings.push({ message: `not scanned for image references (YAML syntax: ${err.message})`, location: err.location });
      continue;
    }
    const s = new FileScanner(y, registries, kind);
    if (KUSTOMIZATION.has(path.basename(file))) s.kustomizeImages(doc.contents);
    s.walk(doc.contents);
    refs.push(...s.refs);
  }
  // Document order is file order already; sort within for stable output.
  refs.sort((a, b) => a.source!.span.start - b.source!.span.start);
  return { references: refs, warnings };
}

/** Every reference to `registries` in the stack's YAML, in file order. */
export async function scanReferences(opts: ScanReferencesOptions): Promise<ScanReferencesResult> {
  const cnoeDirs = [...new Set(opts.apps.flatMap((a) => a.cnoeDirs.map((c) => c.dir)))];
  const valueFiles = new Set(opts.apps.flatMap((a) => (a.valueFiles ?? []).map((v) => v.file)));
  const top = (await topLevelYamlFiles(opts.root)).filter((f) => path.basename(f) !== CONFIG_FILE);
  const below = await walkFiles(cnoeDirs, isYamlName);
  const files = [...new Set([...top, ...below, ...valueFiles, ...(opts.extraFiles ?? [])])].sort();
  const stops = [opts.root, ...cnoeDirs];
  const charts = new Map<string, boolean>();
  const references: ManifestReference[] = [];
  const warnings: StackWarning[] = [];
  const scanned: string[] = [];
  for (const file of files) {
    const base = path.basename(file);
    let kind: 'manifest' | 'helm-values' = valueFiles.has(file) ? 'helm-values' : 'manifest';
    const chart = await chartDirOf(file, stops, charts);
    if (chart) {
      if (base === 'Chart.yaml' || base === 'Chart.lock') continue;
      const rel = path.relative(chart, file).split(path.sep);
      if (rel[0] === 'templates') continue;
      kind = 'helm-values';
    }
    const r = await scanFile(file, opts.registries, kind);
    references.push(...r.references);
    warnings.push(...r.warnings);
    scanned.push(file);
  }
  return { references, warnings, files: scanned };
}
