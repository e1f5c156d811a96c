/**
 * `RUN --mount` for the runc executor: turns the step's RunMounts into OCI
 * mounts of its config.json, plus the mount targets the stub lower dir
 * (stubs.ts) must provide so that a target the image lacks is never created
 * in the upper dir, i.e. never reaches the change layer.
 *
 * Implemented here: `type=tmpfs`. Every other type is refused with
 * RUN_MOUNT_UNSUPPORTED at the RUN line until it is implemented.
 */
import * as path from 'node:path';
import { OcistackError } from '../../errors.js';
import type { RunMount, RunRequest } from '../types.js';
import type { OciMount } from './spec.js';
import { MOUNT_TARGET_DIRS, MOUNT_TARGET_FILES } from './spec.js';

/** Mount types this executor implements. */
export const SUPPORTED_MOUNT_TYPES: readonly RunMount['type'][] = ['tmpfs'];

export interface StepMounts {
  /** Appended to the spec's mounts, in Dockerfile order. */
  oci: OciMount[];
  /** Image paths (absolute) that must exist as directories / files: stubbed when the image lacks them. */
  stubDirs: string[];
  stubFiles: string[];
}

function mountError(req: RunRequest, message: string, hint: string, code = 'RUN_MOUNT'): OcistackError {
  return new OcistackError(message, { code, location: req.location, hint });
}

/** The absolute, normalised target of a mount (a relative one is below the step's WORKDIR, as in BuildKit). */
export function mountTarget(req: RunRequest, m: RunMount): string {
  if (!m.target) throw mountError(req, `RUN --mount=type=${m.type} needs a target`, `add target=/path to the --mount option`);
  const t = path.posix.resolve(req.process.cwd || '/', m.target);
  if (t === '/') throw mountError(req, `RUN --mount=type=${m.type} cannot be mounted at /`, 'choose a target below /, e.g. target=/tmp/x');
  for (const reserved of [...MOUNT_TARGET_DIRS, ...MOUNT_TARGET_FILES]) {
    if (t === reserved || t.startsWith(`${reserved}/`)) {
      throw mountError(req, `RUN --mount target ${t} is below ${reserved}, which the step itself mounts`, 'choose another target');
    }
  }
  return t;
}

/** Throws RUN_MOUNT_UNSUPPORTED for the first mount of a type not implemented yet. */
export function checkMountTypes(req: RunRequest): void {
  const bad = req.mounts.find((m) => !SUPPORTED_MOUNT_TYPES.includes(m.type));
  if (bad) {
    throw new OcistackError(`RUN --mount=type=${bad.type} is not supported by the runc executor yet`, {
      code: 'RUN_MOUNT_UNSUPPORTED',
      location: req.location,
      hint: `remove the --mount=type=${bad.type} option for now (supported: ${SUPPORTED_MOUNT_TYPES.join(', ')})`,
    });
  }
}

function tmpfsMount(target: string, m: RunMount): OciMount {
  const options = ['nosuid', 'nodev', 'mode=1777'];
  if (m.size !== undefined && m.size > 0) options.push(`size=${m.size}`);
  return { destination: target, type: 'tmpfs', source: 'tmpfs', options };
}

/** The OCI mounts and stub targets of the step's `--mount`s (types checked by checkMountTypes). */
export function stepMounts(req: RunRequest): StepMounts {
  const out: StepMounts = { oci: [], stubDirs: [], stubFiles: [] };
  const seen = new Set<string>();
  for (const m of req.mounts) {
    const target = mountTarget(req, m);
    if (seen.has(target)) throw mountError(req, `two RUN --mount options have the target ${target}`, 'give each mount its own target');
    seen.add(target);
    switch (m.type) {
      case 'tmpfs':
        out.oci.push(tmpfsMount(target, m));
        out.stubDirs.push(target);
        break;
      default:
        checkMountTypes(req);
    }
  }
  return out;
}
