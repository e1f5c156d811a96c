/**
 * Instruction flags (`--from=x`, `--link`), validated the way BuildKit's
 * BFlags does: known names only, booleans take true/false, strings need a
 * value, repeatable flags collect values, `--` ends the flags.
 */
import type { SourceLocation } from '../errors.js';
import { closest, instructionError } from './diagnostics.js';

export type FlagKind = 'bool' | 'string' | 'strings';

export interface ParsedFlags {
  bool(name: string): boolean;
  string(name: string): string | undefined;
  strings(name: string): string[];
  used(name: string): boolean;
}

/** Parses `flags` against `spec`; throws DOCKERFILE_SYNTAX naming the valid flags. */
export function parseFlags(
  keyword: string,
  flags: string[],
  spec: Record<string, FlagKind>,
  location: SourceLocation,
  original = '',
): ParsedFlags {
  const values = new Map<string, string | string[]>();
  const upper = keyword.toUpperCase();
  const valid = Object.keys(spec).map((n) => `--${n}`);
  const validText = valid.length ? `valid flags for ${upper}: ${valid.join(', ')}` : `${upper} takes no flags`;
  for (const a of flags) {
    if (a === '--') break;
    // Point at the flag itself when it can be found on the instruction's first line.
    const at = original.split('\n')[0]!.indexOf(a.split('=')[0]!);
    const loc: SourceLocation = at >= 0 && original ? { ...location, column: (location.column ?? 1) + at } : location;
    const syntaxError = (msg: string, _l: SourceLocation, hint: string) => instructionError(msg, original || a, loc, hint);
    if (!a.startsWith('--')) throw syntaxError(`arg should start with -- : ${a}`, location, validText);
    const eq = a.indexOf('=');
    const flagName = eq >= 0 ? a.slice(0, eq) : a;
    const value = eq >= 0 ? a.slice(eq + 1) : '';
    const hasValue = eq >= 0;
    const name = flagName.slice(2);
    const kind = spec[name];
    if (!kind) {
      const guess = closest(name, Object.keys(spec));
      throw syntaxError(`unknown flag: ${flagName} for ${upper}`, location, (guess ? `did you mean --${guess}? ` : '') + validText);
    }
    if (values.has(name) && kind !== 'strings') throw syntaxError(`duplicate flag specified: ${flagName}`, location, `give ${flagName} once`);
    switch (kind) {
      case 'bool': {
        if (hasValue && value === '') throw syntaxError(`missing a value on flag: ${flagName}`, location, `write ${flagName} or ${flagName}=true|false`);
        const v = value.toLowerCase();
        if (v === 'true' || v === '') values.set(name, 'true');
        else if (v === 'false') values.set(name, 'false');
        else throw syntaxError(`expecting boolean value for flag ${flagName}, not: ${value}`, location, `write ${flagName}=true or ${flagName}=false`);
        break;
      }
      case 'string':
        if (!hasValue) throw syntaxError(`missing a value on flag: ${flagName}`, location, `write ${flagName}=VALUE`);
        values.set(name, value);
        break;
      case 'strings': {
        if (!hasValue) throw syntaxError(`missing a value on flag: ${flagName}`, location, `write ${flagName}=VALUE`);
        const list = (values.get(name) as string[] | undefined) ?? [];
        list.push(value);
        values.set(name, list);
        break;
      }
    }
  }
  return {
    bool: (n) => values.get(n) === 'true',
    string: (n) => values.get(n) as string | undefined,
    strings: (n) => (values.get(n) as string[] | undefined) ?? [],
    used: (n) => values.has(n),
  };
}
