/**
 * Build secrets (`ocistack build --secret id=ID,src=FILE|env=VAR`,
 * `build({ secrets: { ID: { file } | { env } } })`), read for the RUN steps
 * whose `--mount=type=secret` names them. A secret's value is only ever
 * handed to the executor (RunRequest.secrets); messages name the id, the
 * file or the variable, never the value.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OcistackError, UsageError } from '../errors.js';
import type { SourceLocation } from '../errors.js';

/** Where a build secret comes from: a file, or an environment variable (of `BuildOptions.env`). */
export type BuildSecret = { file: string } | { env: string };

/**
 * `--secret` as docker buildx writes it: `id=ID,src=FILE` (also `source=`),
 * `id=ID,env=VAR`, optional `type=file|env`; `id=ID` alone reads the
 * variable ID if set, else the file ID (buildx's default).
 */
export function parseSecretFlag(spec: string, cwd: string, env: NodeJS.ProcessEnv): [string, BuildSecret] {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--secret "${spec}": "${part}" is not KEY=VALUE`, 'write --secret id=ID,src=FILE or --secret id=ID,env=VAR');
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!['id', 'src', 'source', 'env', 'type'].includes(key)) throw new UsageError(`--secret key "${key}" is not known`, 'the keys are id, src (source), env and type');
    fields.set(key === 'source' ? 'src' : key, part.slice(eq + 1).trim());
  }
  const id = fields.get('id');
  if (!id) throw new UsageError(`--secret "${spec}" has no id`, 'write --secret id=ID,src=FILE');
  const type = fields.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env') throw new UsageError(`--secret type "${type}" is not supported`, 'type is file or env');
  const src = fields.get('src');
  const envName = fields.get('env') ?? (type === 'env' ? src ?? id : undefined);
  if (src !== undefined && fields.has('env')) throw new UsageError(`--secret "${spec}" has both src and env`, 'give either src=FILE or env=VAR');
  if (envName !== undefined) return [id, { env: envName }];
  if (src !== undefined) return [id, { file: path.resolve(cwd, src) }];
  return [id, env[id] !== undefined ? { env: id } : { file: path.resolve(cwd, id) }];
}

/** The value of a secret, or undefined when its variable is unset. A file that cannot be read is an error. */
export function readBuildSecret(id: string, s: BuildSecret, env: NodeJS.ProcessEnv, location?: SourceLocation): Buffer | undefined {
  if ('env' in s) {
    const v = env[s.env];
    return v === undefined ? undefined : Buffer.from(v);
  }
  try {
    return fs.readFileSync(s.file);
  } catch (e) {
    throw new OcistackError(`could not read the secret "${id}" from ${s.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, {
      code: 'RUN_SECRET_MISSING',
      ...(location ? { location } : {}),
      hint: `check the path given with --secret id=${id},src=FILE`,
    });
  }
}
