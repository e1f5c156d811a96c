/**
 * Every conformance kind. Kinds owned by other modules (dockerignore) are
 * loaded when their compiled file exists, so this list needs no edit when
 * they land.
 */
import { existsSync } from 'node:fs';
import type { ConformanceKind } from './types.js';
import { kind as parserCases } from './parser-cases.js';
import { kind as parserNegative } from './parser-negative.js';
import { kind as shellEnvvar } from './shell-envvar.js';
import { kind as shellWords } from './shell-words.js';

export type { ConformanceKind, ConformanceVector } from './types.js';

/** The Dockerfile front end's kinds. */
export const kinds: ConformanceKind[] = [parserCases, parserNegative, shellEnvvar, shellWords];

/** Kind modules in this folder written elsewhere; each exports `kind: ConformanceKind`. */
const OPTIONAL_KIND_MODULES = ['dockerignore'];

/** All kinds: the ones above plus the optional modules that exist. */
export async function allKinds(): Promise<ConformanceKind[]> {
  const out = [...kinds];
  for (const name of OPTIONAL_KIND_MODULES) {
    const url = new URL(`./${name}.js`, import.meta.url);
    if (!existsSync(url)) continue;
    const mod = (await import(url.href)) as { kind?: ConformanceKind };
    if (!mod.kind) throw new Error(`test/conformance/kinds/${name}.ts must export "kind"`);
    out.push(mod.kind);
  }
  return out;
}
