/**
 * Hand-made stacks for the batch and CLI tests (lib/stack/batch.ts): a temp
 * directory with one Dockerfile per image and a manifest referencing them,
 * plus the StackModel and GiteaAccess the other stack modules would have
 * produced for it. The batch takes both as given, so these tests exercise
 * building and pushing, not discovery or credential lookup.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GiteaAccess, ManifestReference, StackImage, StackModel } from '../../lib/stack/types.js';
import type { TestRegistry } from './registry.js';
import { makeTempDir } from './tools.js';

/** A Dockerfile on `ARG BASE` (the test busybox) that writes `/NAME.txt` in a RUN. */
export function okDockerfile(name: string): string {
  return `ARG BASE\nFROM \${BASE}\nRUN echo ${name} > /${name}.txt\nCMD ["cat", "/${name}.txt"]\n`;
}

/** A Dockerfile whose RUN (line 3) fails with exit code 7. */
export const FAILING_DOCKERFILE = 'ARG BASE\nFROM ${BASE}\nRUN echo broken-on-purpose >&2; exit 7\n';

export interface FixtureImage {
  name: string;
  dockerfile: string;
}

export interface StackFixture {
  root: string;
  model: StackModel;
  /** manifests/deployment.yaml, one container per image. */
  manifest: string;
}

/** The access the cluster modules would find for a test registry: its host, its CA, its credentials. */
export function testAccess(reg: TestRegistry): GiteaAccess {
  const port = Number(reg.host.split(':')[1]);
  const credentials = reg.username && reg.password ? { username: reg.username, password: reg.password } : undefined;
  return {
    target: { host: 'localhost', port, pathRouting: true, registry: reg.host, owner: 'giteaadmin', source: 'flags' },
    ...(credentials ? { credentials } : {}),
    credentialSource: credentials ? 'test registry htpasswd user' : 'none',
    registry: { caFile: reg.caFile, ...(credentials ? { credentials } : {}) },
    trustSource: `--ca-file ${reg.caFile}`,
    warnings: [],
  };
}

/** A stack dir with `images` (each in its own directory) and a manifest using each, and its model. */
export function stackFixture(reg: TestRegistry, images: FixtureImage[], prefix = 'stack'): StackFixture {
  const root = makeTempDir(prefix);
  mkdirSync(join(root, 'manifests'));
  const manifest = join(root, 'manifests', 'deployment.yaml');
  const lines = ['apiVersion: v1', 'kind: Pod', 'metadata:', '  name: all', 'spec:', '  containers:'];
  const refs = new Map<string, ManifestReference>();
  for (const img of images) {
    lines.push(`    - name: ${img.name}`);
    const text = `${reg.host}/giteaadmin/${img.name}:latest`;
    lines.push(`      image: ${text}`);
    refs.set(img.name, {
      location: { file: manifest, line: lines.length, column: 14 },
      text,
      registry: reg.host,
      repository: `giteaadmin/${img.name}`,
      tag: 'latest',
      kind: 'manifest',
    });
  }
  writeFileSync(manifest, `${lines.join('\n')}\n`);
  const stackImages: StackImage[] = images.map((img) => {
    const dir = join(root, img.name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'Dockerfile'), img.dockerfile);
    return {
      name: img.name,
      context: dir,
      dockerfile: join(dir, 'Dockerfile'),
      buildArgs: {},
      tags: ['latest'],
      origin: { kind: 'discovered' },
      usedBy: [refs.get(img.name)!],
    };
  });
  return {
    root,
    manifest,
    model: {
      root,
      apps: [],
      images: stackImages,
      unmatched: [],
      warnings: [{ message: 'a warning of the model', location: { file: manifest, line: 1 } }],
    },
  };
}

/** The line of `file` (1-based). */
export function lineOf(file: string, line: number): string {
  return readFileSync(file, 'utf8').split('\n')[line - 1] ?? '';
}
