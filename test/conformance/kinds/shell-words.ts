/**
 * `buildkit-shell/wordsTest`: `ENV k=v` lines build the environment; each
 * `input | w1,w2` line is expanded and split into words (`error` = must fail).
 */
import { readFileSync } from 'node:fs';
import { ShellLex } from '../../../lib/dockerfile/index.js';
import type { ConformanceKind, ConformanceVector } from './types.js';

export const kind: ConformanceKind = {
  name: 'shell-words',
  folder: 'buildkit-shell/wordsTest',
  load(file) {
    const out: ConformanceVector[] = [];
    const env: string[] = [];
    readFileSync(file, 'utf8').split('\n').forEach((raw, i) => {
      const line = raw.replace(/\r$/, '');
      if (line.startsWith('#') || line.trim() === '') return;
      if (line.startsWith('ENV ')) {
        env.push(line.slice(3).replace(/^ +/, ''));
        return;
      }
      const fields = line.split('|');
      if (fields.length !== 2) throw new Error(`wordsTest line ${i + 1}: should be exactly one | in ${JSON.stringify(line)}`);
      const input = fields[0]!.trim();
      const expected = fields[1]!.replace(/^ +/, '').split(',');
      const envNow = [...env];
      out.push({
        id: `line ${i + 1}: ${input}`,
        run() {
          const lex = new ShellLex({ escapeToken: '\\' });
          let got: string[];
          try {
            got = lex.processWords(input, envNow);
          } catch {
            got = ['error'];
          }
          if (got.length !== expected.length || got.some((w, k) => w !== expected[k])) {
            throw new Error(`${JSON.stringify(input)} -> ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
          }
        },
      });
    });
    return out;
  },
};
