/**
 * `buildkit-parser/negative/NAME/Dockerfile`: parsing and planning must fail
 * with a clear error (an OcistackError with a message, a hint and a location)
 * AT THE RIGHT LINE.
 *
 * The vectors carry no expected output, so the expected line of each one is
 * recorded below, derived from the vector and from how BuildKit's
 * parser.Parse (frontend/dockerfile/parser/parser.go) reports it. A vector
 * that is not in the table fails: look at it, decide its line, add it here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { plan } from '../../../lib/dockerfile/index.js';
import { OcistackError } from '../../../lib/errors.js';
import type { ConformanceKind } from './types.js';

/** Expected `error.location.line` per vector, with why. */
export const EXPECTED_LINE: Record<string, { line: number; why: string }> = {
  // 0 bytes. BuildKit reports "file with no instructions" at currentLine = 0
  // (no line was scanned); our lines are 1-based, so the only line there is.
  empty_dockerfile: { line: 1, why: 'empty file: the error is at its (only, empty) first line' },
  // "# Hello\n# These are just comments\n\n": three lines, all comments or
  // blank. BuildKit reports the error after scanning them all, at
  // currentLine = 3, the last line of the file.
  only_comments: { line: 3, why: 'no instruction found by the end of the file: the last line, 3' },
};

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
          const expected = EXPECTED_LINE[name];
          if (!expected) {
            throw new Error(`${name}: no expected error line recorded; add it to EXPECTED_LINE in test/conformance/kinds/parser-negative.ts`);
          }
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
          if (error.location.file !== `${name}/Dockerfile` || error.location.line !== expected.line) {
            throw new Error(
              `${name}: error at ${error.location.file}:${error.location.line}, expected ${name}/Dockerfile:${expected.line} (${expected.why}): ${error.format()}`,
            );
          }
        },
      }));
  },
};
