/**
 * A small flag parser with docker/buildah conventions: `--flag value`,
 * `--flag=value`, short aliases (`-t`), repeatable flags, booleans, and `--`
 * to end flags. Unknown flags are usage errors (exit 2) that list the valid ones.
 */
import { UsageError } from '../errors.js';

export interface FlagSpec {
  /** Long name without dashes, e.g. `build-arg`. */
  name: string;
  short?: string;
  type: 'boolean' | 'string' | 'list';
}

export interface ParsedArgs {
  flags: Map<string, string | boolean | string[]>;
  positionals: string[];
}

export function parseArgs(argv: string[], specs: FlagSpec[], command: string): ParsedArgs {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const flags = new Map<string, string | boolean | string[]>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    let spec: FlagSpec | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq >= 0 ? a.slice(eq + 1) : undefined;
      spec = byLong.get(name);
    } else {
      name = a.slice(1, 2);
      inline = a.length > 2 ? a.slice(2).replace(/^=/, '') : undefined;
      spec = byShort.get(name);
    }
    if (!spec) {
      const valid = specs.map((s) => (s.short ? `-${s.short}, --${s.name}` : `--${s.name}`)).join(', ');
      throw new UsageError(`unknown flag ${a} for "ocistack ${command}"`, `valid flags: ${valid || 'none'}; see "ocistack ${command} --help"`);
    }
    if (spec.type === 'boolean') {
      if (inline !== undefined && !/^(true|false)$/.test(inline)) {
        throw new UsageError(`flag --${spec.name} takes true or false, not "${inline}"`);
      }
      flags.set(spec.name, inline === undefined ? true : inline === 'true');
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`flag --${spec.name} needs a value`, `see "ocistack ${command} --help"`);
      value = argv[++i]!;
    }
    if (spec.type === 'list') {
      const list = (flags.get(spec.name) as string[] | undefined) ?? [];
      list.push(value);
      flags.set(spec.name, list);
    } else {
      flags.set(spec.name, value);
    }
  }
  return { flags, positionals };
}

export function flagString(p: ParsedArgs, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagList(p: ParsedArgs, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}

export function flagBool(p: ParsedArgs, name: string): boolean {
  return p.flags.get(name) === true;
}

/** `K=V` pairs (build args, labels); `K` alone takes the value from env as docker does. */
export function parseKeyValues(list: string[], flag: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new UsageError(`--${flag} "${item}" has no name`, `write --${flag} NAME=VALUE`);
    if (eq < 0) {
      const v = env[item];
      if (v !== undefined) out[item] = v;
      continue;
    }
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}
