/**
 * The three functions the batch (batch.ts) takes from the other stack
 * modules, and the requests it calls them with:
 *
 *   resolveGiteaAccess (cluster.ts)  where and how to push (GiteaAccess)
 *   discoverStack      (discover.ts) what DIR holds (StackModel)
 *   writePins          (pin.ts)      `--pin --write`
 *
 * Each is an injectable dependency (`buildStack({ discover, resolveAccess })`,
 * tests pass their own); the defaults load the real modules on first use, so
 * the batch neither imports discovery nor credential code at start-up nor
 * knows how either works.
 */
import { OcistackError } from '../errors.js';
import type { Credentials } from '../registry/types.js';
import type { GiteaAccess, GiteaTarget, ManifestReference, StackModel } from './types.js';

/** What the command line (or a library caller) knows about where to push; the resolver fills in the rest. */
export interface GiteaAccessRequest {
  /** `--host`, `--port`, `--use-path-routing`: win over the cluster's localbuild object and the defaults. */
  host?: string;
  port?: number;
  pathRouting?: boolean;
  /** `--creds` (first in the credential order). */
  credentials?: Credentials;
  /** `--ca-file`, `--cert-dir`, `--insecure` (first in the trust order). */
  caFile?: string;
  certDir?: string;
  insecure?: boolean;
  /** `list` needs only the target (no credentials, no certificate); `build` and `push` need everything. */
  purpose: 'list' | 'build' | 'push';
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export type ResolveGiteaAccess = (req: GiteaAccessRequest) => Promise<GiteaAccess>;

export interface DiscoverStackRequest {
  /** The stack directory (absolute). */
  dir: string;
  /** The registry whose references tie manifests to images. */
  target: GiteaTarget;
  env: NodeJS.ProcessEnv;
}

export type DiscoverStack = (req: DiscoverStackRequest) => Promise<StackModel>;

/** One reference to rewrite: `reference.text` at `reference.location` becomes `pinned`. */
export interface StackPin {
  reference: ManifestReference;
  /** `registry/repository:tag@sha256:...`. */
  pinned: string;
}

export type WritePins = (pins: StackPin[]) => Promise<void>;

// The real modules load on first use (a `stack list` never loads credential
// code, and no stack code loads for other commands).
async function loadModule<T>(load: () => Promise<T>, what: string): Promise<T> {
  try {
    return await load();
  } catch (e) {
    throw new OcistackError(`${what} is not available in this build of ocistack`, {
      code: 'STACK_MODULE_MISSING',
      hint: 'reinstall ocistack; library callers can pass the function explicitly',
      cause: e,
    });
  }
}

export const defaultResolveGiteaAccess: ResolveGiteaAccess = async (req) =>
  (await loadModule(() => import('./cluster.js'), 'finding the Gitea registry and its credentials')).resolveGiteaAccess(req);

/** Discovery matches the stack's references against the one registry the batch pushes to. */
export const defaultDiscoverStack: DiscoverStack = async (req) =>
  (await loadModule(() => import('./discover.js'), 'stack discovery')).discoverStack({ dir: req.dir, registries: [req.target.registry] });

/** pin.ts wants the image and digest of each pin: both are in the pinned reference (`registry/giteaadmin/NAME[:tag]@DIGEST`). */
export const defaultWritePins: WritePins = async (pins) => {
  const { writePins } = await loadModule(() => import('./pin.js'), 'rewriting references (--pin --write)');
  await writePins(
    pins.map((p) => {
      const at = p.pinned.lastIndexOf('@');
      const image = p.reference.repository.replace(/^[^/]+\//, '');
      return { reference: p.reference, image, digest: p.pinned.slice(at + 1), pinned: p.pinned };
    }),
  );
};
