/**
 * `buildkit-parser/negative/NAME/Dockerfile`: parsing and planning must fail
 * with a clear error (an OcistackError with a location and a hint).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { plan } from '../../../lib/dockerfile/index.js';
import { OcistackError } from '../../../lib/errors.js';
import type { ConformanceKind } from './types.js';

export const kind: ConformanceKind = {
  name: 'parser-negative',
  folder: 'buildkit-parser/negative',
  load(dir) {
    return readdirSync(dir)
      .filter((n) => statSync(join(dir, n)).isDirectory())
      .sort()
      .map((name) => ({
        id: name,
        run() {
          const text = readFileSync(join(dir, name, 'Dockerfile'), 'utf8');
          let error: unknown;
          try {
            plan(text, { file: `${name}/Dockerfile` });
          } catch (e) {
            error = e;
          }
          if (error === undefined) throw new Error(`${name}: parsing succeeded but must fail`);
          if (!(error instanceof OcistackError)) throw new Error(`${name}: failed with a non-ocistack error: ${String(error)}`);
          if (!error.location || !error.hint || !error.message) {
            throw new Error(`${name}: error is not clear (needs message, location and hint): ${error.format()}`);
          }
        },
      }));
  },
};
