/**
 * `RUN --mount=...` specs, parsed and checked as BuildKit's parseMount does
 * (instructions/commands_runmount.go): CSV fields, `key=value` with each
 * value expanded on its own, per-type rules and defaults.
 */
import { closest } from './diagnostics.js';

import type { MountSharing, MountType, RunMountSpec } from './types.js';

export type { MountSharing, MountType, RunMountSpec };

const TYPES: MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARING: MountSharing[] = ['shared', 'private', 'locked'];
const ALL_KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env'];

/** A `--mount` spec is wrong; the message says how (hint included). */
export class MountError extends Error {
  constructor(message: string, readonly hint: string) {
    super(message);
    this.name = 'MountError';
  }
}

/** Splits CSV fields: commas separate, double quotes group (`""` is a quote). */
export function splitMountFields(spec: string): string[] {
  const bad = () => new MountError(`failed to parse csv mounts: bad quoting in ${spec}`, 'quote a whole field with double quotes, e.g. "target=/a,b"');
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  let quotedField = false;
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i]!;
    if (inQuote) {
      if (c === '"') {
        if (spec[i + 1] === '"') {
          cur += '"';
          i++;
        } else {
          inQuote = false;
          if (i + 1 < spec.length && spec[i + 1] !== ',') throw bad();
        }
      } else cur += c;
    } else if (c === '"') {
      if (cur !== '' || quotedField) throw bad();
      inQuote = true;
      quotedField = true;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
      quotedField = false;
    } else {
      cur += c;
    }
  }
  if (inQuote) throw bad();
  out.push(cur);
  return out;
}

/**
 * Parses a mount. `expand` expands each value; pass undefined at plan time
 * to check only what does not depend on variables (values holding `$` are
 * left for later).
 */
export function parseMount(spec: string, expand?: (value: string) => string): RunMountSpec {
  const m: RunMountSpec = { type: 'bind', readOnly: true };
  let roAuto = true;
  let mode: number | undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  const late = (v: string) => expand === undefined && v.includes('$');
  for (const field of splitMountFields(spec)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readOnly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readOnly = false;
          roAuto = false;
          continue;
        case 'required':
          if (m.type === 'secret' || m.type === 'ssh') {
            m.required = true;
            continue;
          }
          throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`, 'required is for secret and ssh mounts');
        default:
          throw new MountError(`invalid field '${field}' must be a key=value pair`, 'write --mount=type=...,target=...');
      }
    }
    if (key === 'from' && value.includes('$') && value.indexOf('$') !== value.length - 1) {
      throw new MountError(`'from' doesn't support variable expansion, define alias stage instead`, 'add a stage FROM ${X} AS x (with a global ARG X) and use from=x');
    }
    if (late(value)) continue;
    if (expand) value = expand(value);
    switch (key) {
      case 'type': {
        const t = value.toLowerCase() as MountType;
        if (!TYPES.includes(t)) {
          const g = closest(value, TYPES);
          throw new MountError(`unsupported mount type "${value}"`, `${g ? `did you mean ${g}? ` : ''}type is one of ${TYPES.join(', ')}`);
        }
        m.type = t;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
        m.readOnly = goBool(value, key);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        m.readOnly = !goBool(value, key);
        roAuto = false;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`, 'required is for secret and ssh mounts');
        m.required = goBool(value, key);
        break;
      case 'size':
        if (m.type !== 'tmpfs') throw new MountError(`unexpected key '${key}' for mount type '${m.type}'`, 'size is for tmpfs mounts');
        m.sizeLimit = ramInBytes(value, key);
        break;
      case 'id':
        m.id = value;
        break;
      case 'sharing': {
        const s = value.toLowerCase() as MountSharing;
        if (!SHARING.includes(s)) throw new MountError(`unsupported sharing value "${value}"`, `sharing is one of ${SHARING.join(', ')}`);
        m.sharing = s;
        break;
      }
      case 'mode':
        if (!/^[0-7]+$/.test(value) || parseInt(value, 8) > 0xffffffff) throw new MountError(`invalid value ${value} for mode`, 'mode is octal, e.g. 0755');
        mode = parseInt(value, 8);
        break;
      case 'uid':
      case 'gid': {
        if (!/^[0-9]+$/.test(value) || Number(value) > 0xffffffff) throw new MountError(`invalid value ${value} for ${key}`, `${key} is a number`);
        if (key === 'uid') uid = Number(value);
        else gid = Number(value);
        break;
      }
      case 'env':
        m.env = value;
        break;
      default: {
        const g = closest(key, ALL_KEYS);
        throw new MountError(`unexpected key '${key}' in '${field}'`, `${g ? `did you mean ${g}? ` : ''}--mount keys: ${ALL_KEYS.join(', ')}`);
      }
    }
  }
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    for (const [k, v] of [['mode', mode], ['uid', uid], ['gid', gid]] as const) {
      if (v !== undefined) throw new MountError(`${k} not allowed for "${m.type}" type mounts`, `${k} is for cache, secret and ssh mounts`);
    }
  }
  if (mode !== undefined) m.mode = mode;
  if (uid !== undefined) m.uid = uid;
  if (gid !== undefined) m.gid = gid;
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret') {
    if (m.from !== undefined && m.from !== '') throw new MountError('secret mount should not have a from', 'remove from= from the secret mount');
    if (m.sharing !== undefined) throw new MountError('secret mount should not define sharing', 'remove sharing= from the secret mount');
    if (!m.source && !m.target && !m.id) throw new MountError('invalid secret mount. one of source, target required', 'write --mount=type=secret,id=NAME[,target=PATH]');
    if (m.source && m.id) throw new MountError("both source and id can't be set", 'give the secret either id= or source=');
  }
  if (m.sharing !== undefined && m.type !== 'cache') throw new MountError(`invalid cache sharing set for ${m.type} mount`, 'sharing is for cache mounts');
  return m;
}

function goBool(v: string, key: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new MountError(`invalid value for ${key}: ${v}`, `${key} takes true or false`);
}

/** docker/go-units RAMInBytes: `64m`, `1g`, `512k`, `100` (binary multiples). */
function ramInBytes(v: string, key: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) throw new MountError(`invalid value for ${key}: ${v}`, 'size takes a number with an optional unit, e.g. 64m');
  const mult: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.floor(Number(m[1]) * (m[2] ? mult[m[2].toLowerCase()]! : 1));
}

/** The `from=` of a mount spec when it names a stage or image literally. */
export function mountFrom(spec: string): string | undefined {
  try {
    for (const field of splitMountFields(spec)) {
      const eq = field.indexOf('=');
      if (eq > 0 && field.slice(0, eq).toLowerCase() === 'from') return field.slice(eq + 1);
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** Writes fields back as one CSV spec (quoting fields that need it). */
export function joinMountFields(fields: string[]): string {
  return fields.map((f) => (/[",\n]/.test(f) || f.startsWith(' ') ? `"${f.replace(/"/g, '""')}"` : f)).join(',');
}
