/**
 * `buildkit-shell/envVarTest`: `PLATFORM|input|expected` lines, one word
 * expanded with a fixed environment; `W` (Windows-only) lines are skipped.
 */
import { readFileSync } from 'node:fs';
import { ShellLex } from '../../../lib/dockerfile/index.js';
import type { ConformanceKind, ConformanceVector } from './types.js';

const ENV = ['PWD=/home', 'SHELL=bash', 'KOREAN=한국어', 'NULL='];

export const kind: ConformanceKind = {
  name: 'shell-envvar',
  folder: 'buildkit-shell/envVarTest',
  load(file) {
    const out: ConformanceVector[] = [];
    readFileSync(file, 'utf8').split('\n').forEach((raw, i) => {
      if (raw.startsWith('#')) return;
      const line = raw.replace(/\r$/, '').trim();
      if (line === '') return;
      const fields = line.split('|');
      if (fields.length !== 3) throw new Error(`envVarTest line ${i + 1}: expected 3 fields separated by |, got ${fields.length}`);
      const [platform, input, expected] = fields.map((f) => f.trim()) as [string, string, string];
      if (!['A', 'U', 'W'].includes(platform)) throw new Error(`envVarTest line ${i + 1}: bad platform ${platform}`);
      if (platform === 'W') return;
      out.push({
        id: `line ${i + 1}: ${input}`,
        run() {
          const lex = new ShellLex({ escapeToken: '\\' });
          let got: string;
          try {
            got = lex.processWord(input, ENV);
          } catch (e) {
            if (expected === 'error') return;
            throw new Error(`${JSON.stringify(input)} failed: ${(e as Error).message}; expected ${JSON.stringify(expected)}`);
          }
          if (expected === 'error') throw new Error(`${JSON.stringify(input)} expanded to ${JSON.stringify(got)} but must fail`);
          if (got !== expected) throw new Error(`${JSON.stringify(input)} -> ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
        },
      });
    });
    return out;
  },
};
