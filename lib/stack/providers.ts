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

// INTEGRATION (lead): the modules below are written on other branches
// (stackcore: discover.ts, pin.ts; stackcluster: cluster.ts). Once merged,
// replace each computed specifier by the literal `import('./discover.js')`
// etc. (the import-graph test then sees the edge) and the export names by the
// ones those modules use. The specifiers are computed only so this branch
// compiles without them.
const DISCOVER_MODULE = './discover.js';
const CLUSTER_MODULE = './cluster.js';
const PIN_MODULE = './pin.js';

async function load<T>(spec: string, name: string, what: string): Promise<T> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch (e) {
    throw new OcistackError(`${what} is not available in this build of ocistack (${spec} did not load)`, {
      code: 'STACK_MODULE_MISSING',
      hint: 'reinstall ocistack; library callers can pass the function explicitly',
      cause: e,
    });
  }
  const fn = mod[name];
  if (typeof fn !== 'function') {
    throw new OcistackError(`${what}: ${spec} has no function ${name}`, { code: 'STACK_MODULE_MISSING', hint: 'reinstall ocistack' });
  }
  return fn as T;
}

export const defaultResolveGiteaAccess: ResolveGiteaAccess = async (req) =>
  (await load<ResolveGiteaAccess>(CLUSTER_MODULE, 'resolveGiteaAccess', 'finding the Gitea registry and its credentials'))(req);

export const defaultDiscoverStack: DiscoverStack = async (req) =>
  (await load<DiscoverStack>(DISCOVER_MODULE, 'discoverStack', 'stack discovery'))(req);

export const defaultWritePins: WritePins = async (pins) =>
  (await load<WritePins>(PIN_MODULE, 'writePins', 'rewriting references (--pin --write)'))(pins);
