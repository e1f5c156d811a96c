/**
 * `buildkit-parser/cases/NAME/{Dockerfile,result}`: parse, dump in BuildKit's
 * format, compare byte for byte.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseDockerfile, dumpAst } from '../../../lib/dockerfile/index.js';
import type { ConformanceKind } from './types.js';

export const kind: ConformanceKind = {
  name: 'parser-cases',
  folder: 'buildkit-parser/cases',
  load(dir) {
    return readdirSync(dir)
      .filter((n) => statSync(join(dir, n)).isDirectory())
      .sort()
      .map((name) => ({
        id: name,
        run() {
          const text = readFileSync(join(dir, name, 'Dockerfile'), 'utf8');
          const expected = readFileSync(join(dir, name, 'result'), 'utf8');
          const got = dumpAst(parseDockerfile(text, { file: `${name}/Dockerfile` }));
          if (got !== expected) throw new Error(`dump differs for ${name}:\n${firstDifference(got, expected)}`);
        },
      }));
  },
};

function firstDifference(got: string, expected: string): string {
  const g = got.split('\n');
  const e = expected.split('\n');
  for (let i = 0; i < Math.max(g.length, e.length); i++) {
    if (g[i] !== e[i]) return `line ${i + 1}:\n  got:      ${JSON.stringify(g[i])}\n  expected: ${JSON.stringify(e[i])}`;
  }
  return '(no line differs)';
}
