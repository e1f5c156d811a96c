/**
 * `dockerignore/matches.json` (moby/patternmatcher's tables): each vector is
 * a list of .dockerignore lines, a path, and whether the path (or one of its
 * parents) is excluded. The lines go through the same reader and matcher as
 * a real build's .dockerignore.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IgnoreMatcher, parseDockerignore } from '../../../lib/context/index.js';
import type { ConformanceKind, ConformanceVector } from './types.js';

interface MatchVector {
  patterns: string[];
  path: string;
  excluded: boolean;
}

export const kind: ConformanceKind = {
  name: 'dockerignore',
  folder: 'dockerignore',
  load(dir) {
    const vectors = JSON.parse(readFileSync(join(dir, 'matches.json'), 'utf8')) as MatchVector[];
    if (!Array.isArray(vectors)) throw new Error('matches.json must be an array');
    return vectors.map((v, i): ConformanceVector => ({
      id: `#${i} ${JSON.stringify(v.patterns)} ${JSON.stringify(v.path)}`,
      run() {
        const matcher = new IgnoreMatcher(parseDockerignore(v.patterns.join('\n')));
        const got = matcher.excludes(v.path);
        if (got !== v.excluded) throw new Error(`excluded=${got}, expected ${v.excluded}`);
      },
    }));
  },
};
