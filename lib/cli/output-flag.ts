/**
 * `ocistack build --output/-o SPEC`, as `docker buildx build -o` reads it:
 *  - `type=oci,dest=DIR|FILE.tar`, `type=docker,dest=FILE.tar`, `type=local,dest=DIR`;
 *  - `PATH` alone (no `=`): `type=local,dest=PATH`;
 *  - `type=registry[,name=REF]`: push, as `--push` does (`name` adds a tag).
 * Every mistake is a usage error (exit 2) that names the flag and shows a
 * spec that works.
 */
import { UsageError } from '../errors.js';
import type { BuildOutput } from '../engine/options.js';

export type OutputFlag = { kind: 'output'; output: BuildOutput } | { kind: 'push'; name?: string };

const EXAMPLES = 'e.g. -o type=oci,dest=image.tar, -o type=docker,dest=image.tar, -o type=local,dest=out, -o out, -o type=registry';
const KEYS: Record<string, string[]> = { oci: ['type', 'dest'], docker: ['type', 'dest'], local: ['type', 'dest'], registry: ['type', 'name', 'push'] };

export function parseOutputFlag(spec: string): OutputFlag {
  if (spec === '-') throw new UsageError('--output "-" (an archive on stdout) is not supported: stdout carries the digest', 'write the archive to a file: -o type=docker,dest=image.tar');
  if (!spec.includes('=')) {
    if (!spec.trim()) throw new UsageError('--output is empty', EXAMPLES);
    return { kind: 'output', output: { type: 'local', dest: spec } };
  }
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--output "${spec}": "${part}" is not KEY=VALUE`, EXAMPLES);
    const key = part.slice(0, eq).trim();
    if (fields.has(key)) throw new UsageError(`--output "${spec}" sets ${key} twice`, 'give each key once; repeat -o for several outputs');
    fields.set(key, part.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  if (!type) throw new UsageError(`--output "${spec}" has no type`, EXAMPLES);
  const keys = KEYS[type];
  if (!keys) {
    const hint = type === 'image' ? 'use -t REF --push (or -o type=registry)' : type === 'tar' ? 'use -o type=oci,dest=FILE.tar (an OCI archive) or -o type=docker,dest=FILE.tar' : `the types are oci, docker, local and registry; ${EXAMPLES}`;
    throw new UsageError(`--output type "${type}" is not supported`, hint);
  }
  for (const k of fields.keys()) {
    if (!keys.includes(k)) throw new UsageError(`--output type=${type} has no key "${k}"`, `its keys are ${keys.join(', ')}`);
  }
  if (type === 'registry') {
    const push = fields.get('push');
    if (push !== undefined && push !== 'true') throw new UsageError(`--output type=registry,push=${push}: a registry output always pushes`, 'drop push=, or leave out the registry output');
    const name = fields.get('name');
    if (name === '') throw new UsageError(`--output "${spec}" has an empty name`, 'write name=REGISTRY/OWNER/IMAGE:TAG, or leave name out to push the -t tags');
    return { kind: 'push', name };
  }
  const dest = fields.get('dest');
  if (!dest) {
    const example = type === 'local' ? 'dest=out' : type === 'oci' ? 'dest=DIR or dest=image.tar' : 'dest=image.tar';
    throw new UsageError(`--output type=${type} needs a dest`, `write -o type=${type},${example}`);
  }
  if (dest === '-') throw new UsageError(`--output type=${type},dest=- (stdout) is not supported: stdout carries the digest`, `write it to a file: -o type=${type},dest=${type === 'local' ? 'out' : 'image.tar'}`);
  return { kind: 'output', output: { type: type as BuildOutput['type'], dest } };
}
