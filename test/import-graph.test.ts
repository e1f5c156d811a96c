/**
 * The library's folders depend on each other one way (dockerfile -> plan ->
 * steps -> layers + config -> store -> push): no import cycle between the
 * folders of lib/ (a top-level file like lib/errors.ts counts as its own
 * node) nor between single files. Read from the TypeScript sources, static
 * `import`/`export ... from` and dynamic `import()` alike, type-only too.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/import-graph.test.js -> the repository root.
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const lib = path.join(repo, 'lib');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of one file, resolved to .ts files under lib/. */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|^\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2] ?? m[3]!;
    out.push(path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts'));
  }
  return out;
}

function folderOf(file: string): string {
  const rel = path.relative(lib, file).split(path.sep);
  return rel.length > 1 ? rel[0]! : rel[0]!.replace(/\.ts$/, '');
}

/** A cycle in a directed graph, as a path that ends where it starts, or undefined. */
export function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  for (const startNode of graph.keys()) {
    if (state.has(startNode)) continue;
    const stack: { node: string; next: string[] }[] = [{ node: startNode, next: [...(graph.get(startNode) ?? [])] }];
    state.set(startNode, 'open');
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const n = top.next.pop();
      if (n === undefined) {
        state.set(top.node, 'done');
        stack.pop();
        continue;
      }
      if (state.get(n) === 'open') {
        const nodes = stack.map((f) => f.node);
        return [...nodes.slice(nodes.indexOf(n)), n];
      }
      if (state.has(n)) continue;
      state.set(n, 'open');
      stack.push({ node: n, next: [...(graph.get(n) ?? [])] });
    }
  }
  return undefined;
}

function graphs() {
  const files = new Map<string, Set<string>>();
  const folders = new Map<string, Set<string>>();
  const why = new Map<string, string>();
  for (const f of sources(lib)) {
    const deps = importsOf(f, fs.readFileSync(f, 'utf8'));
    files.set(path.relative(lib, f), new Set(deps.map((d) => path.relative(lib, d))));
    for (const d of deps) {
      const a = folderOf(f);
      const b = folderOf(d);
      if (a === b) continue;
      if (!folders.has(a)) folders.set(a, new Set());
      folders.get(a)!.add(b);
      why.set(`${a}->${b}`, `${path.relative(lib, f)} imports ${path.relative(lib, d)}`);
    }
  }
  return { files, folders, why };
}

test('the parser finds every kind of relative import (the check itself can fail)', () => {
  const f = path.join(lib, 'x', 'a.ts');
  const text = [
    "import { a } from '../y/b.js';",
    "import type { T } from './c.js';",
    "export * from '../z.js';",
    "export { q } from './d.js';",
    "const m = await import('../w/e.js');",
    "import './side.js';",
    "import fs from 'node:fs';",
  ].join('\n');
  assert.equal(importsOf(f, text).map((p) => path.relative(lib, p)), ['y/b.ts', 'x/c.ts', 'z.ts', 'x/d.ts', 'w/e.ts', 'x/side.ts'].map((p) => p.split('/').join(path.sep)));
  assert.equal(findCycle(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])]])), ['a', 'b', 'c', 'a']);
  assert.is(findCycle(new Map([['a', new Set(['b', 'c'])], ['b', new Set(['c'])], ['c', new Set<string>()]])), undefined);
});

test('no import cycle between the folders of lib/', () => {
  const { folders, why } = graphs();
  assert.ok(folders.size > 5, 'the folders were read');
  const cycle = findCycle(folders);
  const detail = cycle?.slice(1).map((b, i) => why.get(`${cycle[i]}->${b}`)).join('; ');
  assert.is(cycle, undefined, `folder cycle ${cycle?.join(' -> ')}: ${detail}`);
});

test('no import cycle between the files of lib/', () => {
  const { files } = graphs();
  const cycle = findCycle(files);
  assert.is(cycle, undefined, `file cycle ${cycle?.join(' -> ')}`);
});

test('the image side knows nothing of the Dockerfile front end', () => {
  const { folders, why } = graphs();
  for (const side of ['image', 'layer', 'registry', 'context']) {
    assert.not.ok(folders.get(side)?.has('dockerfile'), why.get(`${side}->dockerfile`));
  }
});

test.run();
