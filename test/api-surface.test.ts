/**
 * The package exports exactly the API docs/api.md documents: the runtime
 * names of lib/index.ts equal the page's value list, its type exports equal
 * the page's type list, and nothing is re-exported wholesale (`export *`),
 * so an internal can never leak into the API by accident.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as api from '../lib/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const doc = fs.readFileSync(path.join(repo, 'docs', 'api.md'), 'utf8');
const index = fs.readFileSync(path.join(repo, 'lib', 'index.ts'), 'utf8');

/** Names in backticks between `<!-- api:NAME -->` and `<!-- /api:NAME -->`. */
function documented(block: string): string[] {
  const m = new RegExp(`<!-- api:${block} -->([\\s\\S]*?)<!-- /api:${block} -->`).exec(doc);
  assert.ok(m, `docs/api.md has an api:${block} list`);
  return [...m![1]!.matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((x) => x[1]!).sort();
}

/** Names exported by `export { ... }` / `export type { ... }` statements of lib/index.ts. */
function exported(kind: 'value' | 'type'): string[] {
  const out: string[] = [];
  for (const m of index.matchAll(/export\s+(type\s+)?\{([^}]*)\}/g)) {
    if ((m[1] !== undefined) !== (kind === 'type')) continue;
    for (const item of m[2]!.split(',')) {
      const t = item.trim();
      if (!t) continue;
      out.push(t.split(/\s+as\s+/).pop()!.trim());
    }
  }
  return out.sort();
}

test('the runtime exports are exactly the documented values', () => {
  const values = documented('values');
  assert.ok(values.length > 20, 'the list was read');
  assert.equal(Object.keys(api).sort(), values);
  assert.equal(exported('value'), values, 'lib/index.ts value exports');
});

test('the type exports are exactly the documented types', () => {
  const types = documented('types');
  assert.ok(types.length > 20, 'the list was read');
  assert.equal(exported('type'), types);
});

test('nothing is re-exported wholesale and every export statement is a named list', () => {
  assert.not.match(index, /export\s+(type\s+)?\*/);
  const stray = index.split('\n').filter((l) => /^\s*export\b/.test(l) && !/^\s*export\s+(type\s+)?\{/.test(l));
  assert.equal(stray, []);
});

test('documented functions are callable and the error class works', () => {
  assert.type(api.build, 'function');
  assert.is(api.expandWord('${A:-x}/b', ['A=a']), 'a/b');
  const e = new api.OcistackError('m', { code: 'X', hint: 'h' });
  assert.ok(api.isOcistackError(e));
  assert.is(e.format(), 'm\nhint: h');
});

test.run();
