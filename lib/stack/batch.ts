/**
 * Build or push every image of a stack (issue 10): `listStack`, `buildStack`,
 * `pushStack`.
 *
 * First the access (where the images go) and the model (what the stack
 * holds) are had, from the caller or from the other stack modules
 * (providers.ts), and every reference is checked; only then does any build
 * start. Images build `concurrency` at a time with lib/engine's `build()`,
 * all into one cache directory, so a base two images share is pulled once
 * (the blob store keeps it, and a blob two builds want at the same moment is
 * downloaded once, a shared new layer uploaded once: lib/registry/in-flight.ts).
 * One image failing does not
 * stop the others unless `failFast`; a failed build pushes no tag (build()
 * pushes only after every stage succeeded).
 *
 * Not yet: identical build stages of different images are built once per
 * image. That needs issue 11's step cache; once build() answers steps from
 * it, the shared `cacheDir` makes the second image's steps hits, and
 * `cachedSteps` counts them (the `cached` step events) with no change here.
 */
import pLimit from 'p-limit';
import { abortError, throwIfAborted } from '../abort.js';
import { build as defaultBuild } from '../engine/build.js';
import type { BuildOptions, BuildResult } from '../engine/options.js';
import type { BuildSecret } from '../engine/secrets.js';
import { OcistackError, UsageError } from '../errors.js';
import { selectExecutor } from '../executor/select.js';
import type { Executor } from '../executor/types.js';
import { BlobStore, defaultCacheDir } from '../image/store.js';
import { silent, type ProgressListener } from '../progress/events.js';
import { parseReference } from '../registry/reference.js';
import type { RegistryOptions } from '../registry/types.js';
import {
  defaultDiscoverStack, defaultResolveGiteaAccess,
  type DiscoverStack, type GiteaAccessRequest, type ResolveGiteaAccess,
} from './providers.js';
import { prefixedListener } from './progress-prefix.js';
import type { GiteaAccess, StackImage, StackImageResult, StackModel, StackResult } from './types.js';
import { setMaxListeners } from 'node:events';
import * as path from 'node:path';

/** Images built at once unless told otherwise (docs/stacks.md#concurrency says why 2). */
export const DEFAULT_STACK_CONCURRENCY = 2;

/** Abort listeners one build may hold on its signal at once (requests in flight, blob writes, a RUN). */
const LISTENERS_PER_BUILD = 32;

export interface StackOptions {
  /** The stack directory (the one given to `idpbuilder create -p`). */
  dir: string;
  /** Only these images, by name (default all); an unknown name is a usage error listing the names. */
  images?: string[];
  /** Use this model instead of discovering DIR. */
  model?: StackModel;
  /** Use this access instead of resolving it (flags, cluster, defaults). */
  access?: GiteaAccess;
  /** What the caller knows about the target: `--host`, `--port`, `--use-path-routing`, `--creds`, `--ca-file`, `--insecure`. */
  accessRequest?: Omit<GiteaAccessRequest, 'purpose' | 'env' | 'signal'>;
  /** Discovery (default: lib/stack/discover.ts). */
  discover?: DiscoverStack;
  /** Access resolution (default: lib/stack/cluster.ts). */
  resolveAccess?: ResolveGiteaAccess;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export interface StackBuildOptions extends StackOptions {
  /** Push every tag of every image that built (pushStack sets it). */
  push?: boolean;
  /** Replaces every image's tags (`--tag`). */
  tag?: string;
  /** Images built at once (default {@link DEFAULT_STACK_CONCURRENCY}). */
  concurrency?: number;
  /** Stop at the first failure: images not started are skipped, running ones aborted. */
  failFast?: boolean;
  /** One blob cache for every image (default `$OCISTACK_CACHE_DIR` or `~/.cache/ocistack`). */
  cacheDir?: string;
  /** Build arguments for every image; they win over an image's own (`ocistack.yaml`). */
  buildArgs?: Record<string, string>;
  /** Platform for images whose entry names none. */
  platform?: string;
  sourceDateEpoch?: number;
  executor?: Executor;
  allowInsecure?: boolean;
  secrets?: Record<string, BuildSecret>;
  /** Registry options besides the access's (timeouts, chunk size); the access's TLS and credentials win. */
  registry?: RegistryOptions;
  /** Every image's progress, each event prefixed with `[name] ` (progress-prefix.ts). */
  onProgress?: ProgressListener;
  /**
   * The build function (default lib/engine's `build`). A hook for issue 11
   * (a build that shares a step cache across the images) and for embedders.
   */
  build?: (opts: BuildOptions) => Promise<BuildResult>;
}

/** One image as `stack list` shows it. */
export interface StackListEntry {
  image: StackImage;
  /** The references it would be pushed as. */
  references: string[];
}

export interface StackListing {
  model: StackModel;
  access: GiteaAccess;
  images: StackListEntry[];
}

/** The model and access, from the caller or the providers: access first, since discovery matches references against its registry. */
async function modelAndAccess(opts: StackOptions, purpose: GiteaAccessRequest['purpose']): Promise<{ model: StackModel; access: GiteaAccess }> {
  const env = opts.env ?? process.env;
  const access = opts.access ?? (await (opts.resolveAccess ?? defaultResolveGiteaAccess)({ ...opts.accessRequest, purpose, env, signal: opts.signal }));
  throwIfAborted(opts.signal);
  const model = opts.model ?? (await (opts.discover ?? defaultDiscoverStack)({ dir: path.resolve(opts.dir), target: access.target, env }));
  throwIfAborted(opts.signal);
  return { model, access };
}

/** The images named in `names`, in that order (all, in the model's order, when empty); unknown names fail listing the known ones. */
export function selectImages(model: StackModel, names: string[] = []): StackImage[] {
  if (!names.length) return model.images;
  const known = new Set(model.images.map((i) => i.name));
  const unknown = [...new Set(names)].filter((n) => !known.has(n));
  if (unknown.length) {
    const list = model.images.map((i) => i.name).join(', ') || 'none';
    throw new UsageError(
      `${unknown.length === 1 ? 'no image' : 'no images'} named ${unknown.join(', ')} in the stack ${model.root}`,
      `the stack's images are: ${list} ("ocistack stack list" shows them)`,
    );
  }
  // In the order named: `stack push . db api` builds db first.
  return [...new Set(names)].map((n) => model.images.find((i) => i.name === n)!);
}

/** `<registry>/<owner>/<name>:<tag>` for every tag (`tag` replaces the image's own). */
export function imageReferences(image: StackImage, access: GiteaAccess, tag?: string): string[] {
  const tags = tag !== undefined ? [tag] : image.tags.length ? image.tags : ['latest'];
  return [...new Set(tags)].map((t) => `${access.target.registry}/${access.target.owner}/${image.name}:${t}`);
}

/** The stack's images and where each would be pushed, without building anything. */
export async function listStack(opts: StackOptions & { tag?: string }): Promise<StackListing> {
  const { model, access } = await modelAndAccess(opts, 'list');
  const images = selectImages(model, opts.images).map((image) => ({ image, references: imageReferences(image, access, opts.tag) }));
  return { model, access, images };
}

/** Build every selected image (tagged with its Gitea references, kept in the cache; nothing pushed). */
export function buildStack(opts: StackBuildOptions): Promise<StackResult> {
  return runBatch(opts, opts.push ? 'push' : 'build');
}

/** Build every selected image and push its tags to the stack's Gitea registry. */
export function pushStack(opts: StackBuildOptions): Promise<StackResult> {
  return runBatch({ ...opts, push: true }, 'push');
}

function checkConcurrency(n: number | undefined): number {
  const c = n ?? DEFAULT_STACK_CONCURRENCY;
  if (!Number.isInteger(c) || c < 1) throw new UsageError(`concurrency ${n} is not a whole number of at least 1`, 'e.g. --concurrency 2');
  return c;
}

async function runBatch(opts: StackBuildOptions, purpose: 'build' | 'push'): Promise<StackResult> {
  const concurrency = checkConcurrency(opts.concurrency);
  const env = opts.env ?? process.env;
  const { model, access } = await modelAndAccess(opts, purpose);
  const selected = selectImages(model, opts.images);
  if (!selected.length) {
    throw new OcistackError(`the stack ${model.root} has no image to build`, {
      code: 'STACK_EMPTY',
      hint: 'put a Dockerfile in a directory an app of the stack points at (cnoe://...), or list images in ocistack.yaml',
    });
  }
  // Every reference is checked before any build starts.
  const plans = selected.map((image) => {
    const references = imageReferences(image, access, opts.tag);
    for (const r of references) parseReference(r);
    return { image, references };
  });

  const cacheDir = path.resolve(opts.cacheDir ?? defaultCacheDir(env));
  const executor = opts.executor ?? (await selectExecutor(undefined, env));
  const progress = opts.onProgress ?? silent;
  const buildFn = opts.build ?? defaultBuild;
  const store = new BlobStore(cacheDir);

  // One signal for every build: the caller's, and --fail-fast's after a failure.
  const stop = new AbortController();
  // Every running build (its requests, store, steps) listens on this one signal.
  setMaxListeners(LISTENERS_PER_BUILD * concurrency, stop.signal);
  const onCallerAbort = () => stop.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onCallerAbort();
  else opts.signal?.addEventListener('abort', onCallerAbort, { once: true });

  const limit = pLimit(concurrency);
  const results: StackImageResult[] = [];
  try {
    await Promise.all(
      plans.map(({ image, references }, i) =>
        limit(async () => {
          results[i] = await buildOne(image, references);
        }),
      ),
    );
  } finally {
    opts.signal?.removeEventListener('abort', onCallerAbort);
  }
  // Ctrl-C: the whole command was interrupted, not some images.
  if (opts.signal?.aborted) throw abortError(opts.signal);
  return { model, access, images: results, ok: results.every((r) => r.status === 'built' || r.status === 'pushed') };

  async function buildOne(image: StackImage, references: string[]): Promise<StackImageResult> {
    if (stop.signal.aborted) {
      return { image, references: [], status: 'skipped', durationMs: 0, cachedSteps: 0, error: abortError(stop.signal) };
    }
    const started = performance.now();
    let cachedSteps = 0;
    const forward = prefixedListener(image.name, progress);
    const listener: ProgressListener = (e) => {
      if (e.type === 'step' && e.status === 'cached') cachedSteps++;
      forward(e);
    };
    try {
      const r = await buildFn({
        context: image.context,
        dockerfile: image.dockerfile,
        tags: references,
        buildArgs: { ...image.buildArgs, ...opts.buildArgs },
        target: image.target,
        platform: image.platform ?? opts.platform,
        push: purpose === 'push',
        registry: { ...opts.registry, ...access.registry, env: access.registry.env ?? env, signal: stop.signal, onProgress: listener },
        cacheDir,
        sourceDateEpoch: opts.sourceDateEpoch,
        executor,
        allowInsecure: opts.allowInsecure,
        secrets: opts.secrets,
        onProgress: listener,
        env,
        signal: stop.signal,
      });
      const configSize = await store.size(r.configDigest).catch(() => 0);
      return {
        image,
        references: r.pushed,
        status: purpose === 'push' ? 'pushed' : 'built',
        manifestDigest: r.manifestDigest,
        size: configSize + r.layers.reduce((n, l) => n + l.size, 0),
        durationMs: Math.round(performance.now() - started),
        cachedSteps,
      };
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      const durationMs = Math.round(performance.now() - started);
      // Aborted because another image failed under failFast (or Ctrl-C): not this image's failure.
      if (stop.signal.aborted) return { image, references: [], status: 'skipped', durationMs, cachedSteps, error: abortError(stop.signal) };
      if (opts.failFast) {
        stop.abort(new OcistackError(`stopped: ${image.name} failed (fail fast)`, { code: 'ABORTED', hint: 'fix that image, or build without --fail-fast to have the others built anyway' }));
      }
      return { image, references: [], status: 'failed', durationMs, cachedSteps, error };
    }
  }
}
