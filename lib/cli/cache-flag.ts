/**
 * `ocistack build --cache-to SPEC` / `--cache-from SPEC`, as buildx reads them:
 *  - `type=registry,ref=REF[,mode=min|max][,ignore-error=true]` (cache-to);
 *  - `type=registry,ref=REF` or a bare `REF` (cache-from, as buildx);
 *  - `oci-mediatypes=true` and `image-manifest=true`, which BuildKit needs
 *    for registries like Gitea and ocistack always does, are accepted.
 * Every mistake is a usage error (exit 2) that names the flag and shows a
 * spec that works.
 */
import { UsageError } from '../errors.js';
import type { RegistryCache } from '../engine/options.js';
import { parseReference } from '../registry/reference.js';

type CacheFlag = 'cache-to' | 'cache-from';

const EXAMPLE: Record<CacheFlag, string> = {
  'cache-to': 'write e.g. --cache-to type=registry,ref=REGISTRY/OWNER/IMAGE:cache,mode=max',
  'cache-from': 'write e.g. --cache-from type=registry,ref=REGISTRY/OWNER/IMAGE:cache (or --cache-from REGISTRY/OWNER/IMAGE:cache)',
};
const KEYS: Record<CacheFlag, string[]> = {
  'cache-to': ['type', 'ref', 'mode', 'ignore-error', 'oci-mediatypes', 'image-manifest'],
  'cache-from': ['type', 'ref'],
};

export function parseCacheFlag(spec: string, flag: CacheFlag): RegistryCache {
  const example = EXAMPLE[flag];
  if (!spec.trim()) throw new UsageError(`--${flag} is empty`, example);
  if (!spec.includes('=')) {
    if (flag === 'cache-to') throw new UsageError(`--cache-to "${spec}" is not TYPE=...,REF=...`, example);
    return { type: 'registry', ref: checkRef(spec.trim(), flag, spec) };
  }
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${flag} "${spec}": "${part}" is not KEY=VALUE`, example);
    const key = part.slice(0, eq).trim();
    if (fields.has(key)) throw new UsageError(`--${flag} "${spec}" sets ${key} twice`, `give each key once; repeat --${flag} for several caches`);
    fields.set(key, part.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  if (!type) throw new UsageError(`--${flag} "${spec}" has no type`, example);
  if (type !== 'registry') {
    const hint = type === 'inline' ? 'ocistack has no inline cache; push a registry cache next to the image' : `only type=registry is supported; ${example}`;
    throw new UsageError(`--${flag} type "${type}" is not supported`, hint);
  }
  for (const k of fields.keys()) {
    if (!KEYS[flag].includes(k)) {
      const hint = flag === 'cache-from' && KEYS['cache-to'].includes(k) ? `${k}= is for --cache-to; --cache-from takes ${KEYS[flag].join(', ')}` : `its keys are ${KEYS[flag].join(', ')}`;
      throw new UsageError(`--${flag} type=registry has no key "${k}"`, hint);
    }
  }
  const ref = fields.get('ref');
  if (!ref) throw new UsageError(`--${flag} "${spec}" has no ref`, example);
  const out: RegistryCache = { type: 'registry', ref: checkRef(ref, flag, spec) };
  const mode = fields.get('mode');
  if (mode !== undefined) {
    if (mode !== 'min' && mode !== 'max') throw new UsageError(`--cache-to mode "${mode}" is neither min nor max`, 'mode=min (the default) exports the final image\'s steps, mode=max every stage\'s');
    out.mode = mode;
  }
  const ignore = fields.get('ignore-error');
  if (ignore !== undefined) out.ignoreError = bool(ignore, 'ignore-error', flag);
  for (const k of ['oci-mediatypes', 'image-manifest']) {
    const v = fields.get(k);
    if (v !== undefined && !bool(v, k, flag)) {
      throw new UsageError(`--cache-to ${k}=false is not supported`, `ocistack always writes the cache as an OCI image manifest (what ${k}=true asks for); drop ${k}=`);
    }
  }
  return out;
}

function bool(v: string, key: string, flag: CacheFlag): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UsageError(`--${flag} ${key}="${v}" is neither true nor false`, `write ${key}=true or ${key}=false`);
}

function checkRef(ref: string, flag: CacheFlag, spec: string): string {
  let parsed;
  try {
    parsed = parseReference(ref);
  } catch (e) {
    throw new UsageError(`--${flag} "${spec}": ${(e as Error).message}`, EXAMPLE[flag]);
  }
  if (flag === 'cache-to' && parsed.digest) throw new UsageError(`--cache-to ref ${ref} names a digest; a cache is written under a tag`, EXAMPLE[flag]);
  return ref;
}
