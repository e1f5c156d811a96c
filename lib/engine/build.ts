/**
 * The build engine: Dockerfile -> plan -> per-stage steps -> layers + config
 * -> blob store -> outputs (OCI layout, registry push).
 *
 * The stages the target needs run in parallel when independent
 * (stage-scheduler.ts: bounded, each waiting for exactly the stages it
 * uses, the first failure aborting the others), every base image pull
 * starting at once; each stage starts from its base (an empty image, a
 * pulled image, or an earlier stage's result) and applies its instructions
 * one by one. Nothing leaves the store until the whole build has
 * succeeded, so a failed build writes no output and pushes no tag.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { throwIfAborted } from '../abort.js';
import { OcistackError } from '../errors.js';
import type { SourceLocation } from '../errors.js';
import { plan as planDockerfile, newStageState, dispatch, parseOnbuildTriggers } from '../dockerfile/index.js';
import type { BuildPlan, Dispatched, Instruction, Stage } from '../dockerfile/types.js';
import { openContext } from '../context/index.js';
import type { BuildContext } from '../context/index.js';
import { openImageFs } from '../layer/index.js';
import type { ImageFs } from '../layer/index.js';
import { writeLayer } from '../layer/index.js';
import { copyLayer } from './copy.js';
import { parseReference, pullImage, pushImage } from '../registry/index.js';
import { withCredentialScope } from '../registry/credential-scope.js';
import { redactUrlCredentials } from '../redact.js';
import { BlobStore } from '../image/store.js';
import { tagLocalImage } from '../image/local-images.js';
import { markBuildActive } from '../cache/active-builds.js';
import { canonicalJson } from '../image/digest.js';
import {
  addHistory, addLayer, applyInstruction, cloneConfig, DEFAULT_PATH, emptyImageConfig, finalizeConfig, getEnv, type ApplyState,
} from '../image/config.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../image/platform.js';
import { MediaType, type Descriptor, type ImageConfig, type ImageManifest, type Platform } from '../image/types.js';
import { noExecutor, NO_EXECUTOR_MESSAGE, INSTALL_RUNC_HINT } from '../executor/none.js';
import { selectExecutor } from '../executor/select.js';
import type { Executor } from '../executor/types.js';
import { runStep } from './run-step.js';
import { silent, type ProgressListener } from '../progress/events.js';
import type { BuildOptions, BuildResult, StepReport } from './options.js';
import { sourceDateEpochFrom, isoTime } from './time.js';
import { defaultStageLimit, StageScheduler } from './stage-scheduler.js';
import { StepIds } from './step-ids.js';
import { stagesUsedBy } from './stage-refs.js';
import { workdirLayerEntries } from './workdir.js';
import { checkOutputDests, outputList, writeOutputs } from './outputs.js';
import { openContentDigests, type ContentDigests } from '../context/content-digests.js';
import { baseStateKey, stepKey } from './step-key.js';
import { deltaSince, latestHistoryCreated, lookupStep, markStage, recordStep } from './instruction-cache.js';
import type { CacheRecord } from '../cache/record.js';
import { sha256 } from '../image/digest.js';
import type { Digest } from '../image/types.js';

/** A built stage: its config and its layers (aligned with config.rootfs.diff_ids). */
interface StageResult {
  config: ImageConfig;
  layers: Descriptor[];
  fs?: ImageFs;
  /** Instruction-cache key of this state (a built stage's final step key). */
  key?: Digest;
}

/** Everything a build shares across stages. */
interface BuildSession {
  plan: BuildPlan;
  store: BlobStore;
  context: BuildContext;
  platform: Platform;
  opts: BuildOptions;
  progress: ProgressListener;
  epoch?: number;
  /** Build time for `created` fields, clamped to SOURCE_DATE_EPOCH. */
  created: string;
  results: Map<number, StageResult>;
  /** Runs the stages; `stages.need(i)` is stage i's result (waited for). Its signal is in `opts.signal`. */
  stages: StageScheduler<StageResult>;
  /** Images pulled for `COPY --from=<image>`, by reference. */
  images: Map<string, Promise<StageResult>>;
  /** Base images, pulled once per reference and platform, all started before the stages. */
  bases: Map<string, Promise<StageResult>>;
  /** Step ids, numbered from the plan. */
  ids: StepIds;
  executor: Executor;
  /** Finished steps, in the order they finished. */
  steps: StepReport[];
  /** Content digests of context files for cache keys, opened at the first step that needs them. */
  digests?: Promise<ContentDigests>;
}

/**
 * Build the image a Dockerfile describes, then write it to the requested
 * outputs and push its tags.
 */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  // Marked as running, so `ocistack cache prune` keeps the blobs and snapshots it is using.
  const active = await markBuildActive(new BlobStore(opts.cacheDir).root);
  try {
    return await buildMarked(opts);
  } finally {
    await active.release();
  }
}

async function buildMarked(opts: BuildOptions): Promise<BuildResult> {
  const env = opts.env ?? process.env;
  const progress = opts.onProgress ?? silent;
  const buildStarted = performance.now();
  const contextDir = path.resolve(opts.context);
  await assertDirectory(contextDir);
  const dockerfilePath = path.resolve(opts.dockerfile ?? path.join(contextDir, 'Dockerfile'));
  const dockerfileName = displayPath(dockerfilePath);
  const text = opts.dockerfileText ?? (await readDockerfile(dockerfilePath, dockerfileName));

  // Bad tags and unusable output destinations fail before any work is done.
  const tagRefs = (opts.tags ?? []).map((t) => parseReference(t));
  const outputs = outputList(opts.output);
  await checkOutputDests(outputs);
  if (opts.insecure) {
    const hosts = tagRefs.map((r) => r.registry);
    opts = { ...opts, registry: { ...opts.registry, insecureRegistries: [...(opts.registry?.insecureRegistries ?? []), ...hosts] } };
  }
  // One signal for everything: registry requests use it unless given their own.
  const signal = opts.signal;
  if (signal && !opts.registry?.signal) opts = { ...opts, registry: { ...opts.registry, signal } };
  // Explicit credentials and OCISTACK_USERNAME/PASSWORD are for the tags' registries only
  // (none without tags), never for a base image's registry.
  opts = { ...opts, registry: withCredentialScope(opts.registry, tagRefs.map((r) => r.registry)) };
  const platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  const plan = planDockerfile(text, {
    file: dockerfileName,
    buildArgs: opts.buildArgs,
    target: opts.target,
    platform: formatPlatform(platform),
  });
  for (const w of plan.warnings) progress({ type: 'warning', message: w.message, location: w.location });
  const executor = opts.executor ?? (await selectExecutor(undefined, env));
  // Without an executor a RUN fails before any pull or layer is made.
  if (executor === noExecutor) refuseRunWithoutExecutor(plan);

  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFrom(env);
  // Every stage's work uses the scheduler's signal: the build's, also aborted when a stage fails.
  let session: BuildSession;
  const stages = new StageScheduler<StageResult>({
    limit: opts.maxParallelStages ?? defaultStageLimit(),
    signal,
    build: async (index) => {
      const r = await buildStage(session, plan.stages[index]!);
      session.results.set(index, r);
      return r;
    },
  });
  const stageSignal = stages.signal;
  const stageOpts: BuildOptions = {
    ...opts,
    signal: stageSignal,
    registry: { ...opts.registry, signal: opts.registry?.signal ? AbortSignal.any([opts.registry.signal, stageSignal]) : stageSignal },
  };
  session = {
    plan,
    store: new BlobStore(opts.cacheDir, { signal: stageSignal }),
    context: await openContext({ dir: contextDir, dockerfile: dockerfilePath, onProgress: progress }),
    platform,
    opts: stageOpts,
    progress,
    epoch,
    created: isoTime(epoch ?? Math.floor(Date.now() / 1000)),
    results: new Map(),
    stages,
    images: new Map(),
    bases: new Map(),
    ids: new StepIds(plan),
    executor,
    steps: [],
  };

  // Base images are pulled at once, ahead of their stages' turn; a failed pull fails the build now.
  for (const index of plan.order) {
    const st = plan.stages[index]!;
    if (st.base.kind === 'image') stages.watch(basePull(session, st, st.base.ref));
  }
  await stages.run(plan.order);
  const final = session.results.get(plan.target)!;
  // What the stat walk learned serves the next build.
  if (session.digests) await (await session.digests).save();
  throwIfAborted(signal);
  const image = await storeImage(session, final);
  throwIfAborted(signal);
  // Named in the cache too, so `ocistack push REF` finds what `build -t REF` made.
  await tagLocalImage(session.store, image.manifest, tagRefs.map((r) => r.toString()));

  await writeOutputs({ outputs, store: session.store, manifest: image.manifest, tags: tagRefs, epoch, signal, progress });

  let pushed: string[] = [];
  let manifestDigest = image.manifest.digest;
  if (opts.push) {
    if (!opts.tags?.length) {
      throw new OcistackError('--push needs at least one tag', { code: 'USAGE', exitCode: 2, hint: 'add -t REGISTRY/OWNER/IMAGE:TAG' });
    }
    throwIfAborted(signal);
    const res = await pushImage({
      store: session.store,
      manifest: image.manifest,
      tags: opts.tags,
      registry: { ...opts.registry, env: opts.registry?.env ?? env, onProgress: opts.registry?.onProgress ?? progress },
    });
    pushed = res.pushed;
    manifestDigest = res.digest;
  }

  // The last event: the renderers' summary line (`built in 3.2s, 5 steps (3 cached) sha256:…`).
  progress({ type: 'build', digest: manifestDigest, durationMs: performance.now() - buildStarted, steps: session.steps.length, cached: session.steps.filter((st) => st.cached).length });
  return {
    manifestDigest,
    configDigest: image.config.digest,
    manifest: { ...image.manifest, digest: manifestDigest },
    layers: final.layers,
    tags: opts.tags ?? [],
    pushed,
    warnings: plan.warnings,
    // By step id (the plan's order), not finishing order: parallel stages finish in any order.
    steps: [...session.steps].sort((a, b) => stepNumber(a.id) - stepNumber(b.id)),
    size: image.config.size + final.layers.reduce((n, l) => n + l.size, 0),
  };
}

// ---------------------------------------------------------------- stages ----

async function buildStage(s: BuildSession, stage: Stage): Promise<StageResult> {
  const base = await stageBase(s, stage);
  const result: StageResult = { config: cloneConfig(base.config), layers: [...base.layers] };
  const cfg = result.config;
  const c = (cfg.config ??= {});
  // BuildKit gives a stage whose base sets no PATH the default one, in the image too.
  if (getEnv(c.Env, 'PATH') === undefined) c.Env = [...(c.Env ?? []), `PATH=${DEFAULT_PATH}`];

  // ONBUILD triggers of the base image run first, then are not inherited.
  const triggers = stage.base.kind === 'scratch' ? [] : c.OnBuild ?? [];
  c.OnBuild = null;
  const onbuild: Instruction[] = triggers.length
    ? parseOnbuildTriggers(triggers, { file: `${stage.baseName} (ONBUILD)`, location: stage.location })
    : [];

  const state = newStageState({
    baseConfig: cfg,
    buildArgs: s.opts.buildArgs ?? {},
    globalArgs: s.plan.globalArgs,
    platform: formatPlatform(s.platform),
    stage,
  });
  const apply: ApplyState = { cmdSet: false };
  let key = base.key ?? baseStateKey(base.config, base.layers);

  const instructions = [...onbuild, ...stage.instructions];
  const total = instructions.length;
  for (const [n, instr] of instructions.entries()) {
    const id = n < onbuild.length ? s.ids.extra() : s.ids.instruction(stage.index, n - onbuild.length);
    const index = n + 1;
    const name = stageLabel(stage) + redactUrlCredentials(instr.original);
    // The stages this step reads are waited for before it starts (not counted in its time).
    for (const dep of stagesUsedBy(s.plan.stages, stage, instr)) await s.stages.need(dep);
    throwIfAborted(s.opts.signal);
    const started = performance.now();
    // index/total place the step in its stage: `[build 2/5]` in the tty and plain renderers.
    s.progress({ type: 'step', id, stage: stage.name, name, status: 'start', index, total });
    let cached: boolean;
    try {
      const d = dispatch(instr, state);
      ({ key, cached } = await cachedStep(s, stage, result, d, apply, id, key, name));
    } catch (e) {
      s.progress({ type: 'step', id, stage: stage.name, name, status: 'error', error: e instanceof Error ? e.message : String(e), index, total, durationMs: performance.now() - started });
      throw withLocation(e, instr.location);
    }
    const durationMs = performance.now() - started;
    s.steps.push({ id, stage: stage.name, name, cached, durationMs });
    s.progress({ type: 'step', id, stage: stage.name, name, status: cached ? 'cached' : 'done', index, total, durationMs });
  }
  result.key = key;
  return result;
}

/**
 * One step through the instruction cache: key it (a stat walk, no file
 * read), reuse its record when there is one, else run it and record what it
 * added. Returns the key the next step chains from.
 */
async function cachedStep(s: BuildSession, stage: Stage, result: StageResult, d: Dispatched, apply: ApplyState, stepId: string, parent: Digest, name: string): Promise<{ key: Digest; cached: boolean }> {
  const key = await stepKey({
    parent,
    platform: formatPlatform(s.platform),
    dispatched: d,
    context: s.context,
    digests: () => (s.digests ??= openContentDigests({ context: s.context, cacheDir: s.store.root })),
    sourceDateEpoch: s.epoch,
    fromKey: async (from) => {
      const r = await resolveFrom(s, stage, from, d.location, d.resolved.kind === 'run' ? 'RUN --mount from' : 'COPY --from');
      return r.key ?? baseStateKey(r.config, r.layers);
    },
  });
  if (key && !cacheBypassed(s, stage) && !mustRunToFail(s, d)) {
    const record = await lookupStep(s.store, key);
    if (record) {
      applyRecord(result, d, record, apply);
      return { key, cached: true };
    }
  }
  const mark = markStage(result.config, result.layers);
  await applyStep(s, stage, result, d, apply, stepId);
  const delta = deltaSince(mark, result.config, result.layers);
  if (key) {
    await recordStep(s.store, key, name, d.resolved.kind, delta);
    return { key, cached: false };
  }
  // Not cacheable (ADD of a URL without --checksum): what follows chains
  // from what it produced, so an unchanged download still lets later steps hit.
  return { key: sha256(JSON.stringify({ parent, createdBy: d.createdBy, layers: delta.layers.map((l) => l.diffId) })), cached: false };
}

/**
 * A RUN that would fail for want of an entitlement, a required secret or a
 * required SSH agent is never taken from the cache: it runs and fails as it
 * would without one (its key holds none of these).
 */
function mustRunToFail(s: BuildSession, d: Dispatched): boolean {
  const r = d.resolved;
  if (r.kind !== 'run') return false;
  if (r.security === 'insecure' && !s.opts.allowInsecure) return true;
  return (r.parsedMounts ?? []).some((m) =>
    m.required === true && ((m.type === 'secret' && !s.opts.secrets?.[m.id || m.source || path.posix.basename(m.target ?? '')]) || (m.type === 'ssh' && !s.opts.ssh?.[m.id || 'default'])));
}

/** `noCache`, or `noCacheFilter` naming this stage (by name or index). */
function cacheBypassed(s: BuildSession, stage: Stage): boolean {
  if (s.opts.noCache) return true;
  const filter = s.opts.noCacheFilter;
  if (!filter?.length) return false;
  return filter.some((f) => f === String(stage.index) || (stage.name !== undefined && f.toLowerCase() === stage.name));
}

/** Apply a cache hit: the config change the instruction makes, then the recorded layers and history entries. */
function applyRecord(result: StageResult, d: Dispatched, record: CacheRecord, apply: ApplyState): void {
  const r = d.resolved;
  const cfg = result.config;
  if (r.kind !== 'copy' && r.kind !== 'add' && r.kind !== 'run') applyInstruction(cfg, r, apply);
  for (const l of record.layers) {
    result.layers.push({ mediaType: l.mediaType, digest: l.digest, size: l.size });
    addLayer(cfg, l.diffId);
  }
  for (const h of record.history) addHistory(cfg, { ...h });
  // The file view is reopened from the layer digests when a later step needs it (a hit reads no layer).
  if (record.layers.length) result.fs = undefined;
}

function stepNumber(id: string): number {
  return Number(id.replace(/^#/, ''));
}

function stageLabel(stage: Stage): string {
  return `[${stage.name ?? stage.index}] `;
}

async function applyStep(s: BuildSession, stage: Stage, result: StageResult, d: Dispatched, apply: ApplyState, stepId: string): Promise<void> {
  const cfg = result.config;
  const r = d.resolved;
  const history = { created: s.created, created_by: d.createdBy, comment: 'buildkit.dockerfile.v0' };
  switch (r.kind) {
    case 'copy':
    case 'add': {
      const from = r.from !== undefined ? await resolveFrom(s, stage, r.from, d.location) : undefined;
      const layer = await copyLayer({
        instruction: r,
        location: d.location,
        context: s.context,
        from: from ? await stageFs(s, from) : undefined,
        target: await stageFs(s, result),
        workdir: cfg.config?.WorkingDir || '/',
        store: s.store,
        sourceDateEpoch: s.epoch,
        onProgress: s.progress,
        downloadIdleMs: s.opts.registry?.timeouts?.idleMs,
      });
      await pushLayer(result, layer, history);
      return;
    }
    case 'run': {
      const cwd = cfg.config?.WorkingDir || '/';
      const user = cfg.config?.User ?? '';
      await ensureRunWorkdir(s, result, cwd, user, d.location);
      const layer = await runStep({
        run: r,
        location: d.location,
        stepId,
        chain: { layers: [...result.layers], diffIds: [...cfg.rootfs.diff_ids], store: s.store },
        cwd,
        user,
        executor: s.executor,
        allowInsecure: s.opts.allowInsecure === true,
        cacheDir: s.store.root,
        sourceDateEpoch: s.epoch,
        signal: s.opts.signal,
        progress: s.progress,
        secrets: s.opts.secrets,
        env: s.opts.env,
        ssh: s.opts.ssh,
        mountSources: {
          context: s.context,
          stage: async (from) => {
            const r = await resolveFrom(s, stage, from, d.location, 'RUN --mount from');
            return { chain: { layers: [...r.layers], diffIds: [...r.config.rootfs.diff_ids], store: s.store }, fs: await stageFs(s, r) };
          },
        },
      });
      // BuildKit's exporter drops an empty RUN layer and marks its history entry empty.
      if (layer) await pushLayer(result, layer, history);
      else addHistory(cfg, { ...history, empty_layer: true });
      return;
    }
    case 'workdir': {
      applyInstruction(cfg, r, apply);
      const fs = await stageFs(s, result);
      const entries = await workdirLayerEntries(fs, r.path, cfg.config?.User, s.epoch ?? Math.floor(Date.now() / 1000), d.location);
      if (entries.length) {
        await pushLayer(result, await writeLayer(entries, { store: s.store, sourceDateEpoch: s.epoch, location: d.location }), history);
      } else {
        addHistory(cfg, { ...history, empty_layer: true });
      }
      return;
    }
    default:
      applyInstruction(cfg, r, apply);
      if (!d.noHistory) addHistory(cfg, { ...history, empty_layer: true });
  }
}

async function pushLayer(result: StageResult, layer: { digest: Descriptor['digest']; diffId: Descriptor['digest']; size: number; mediaType: string }, history: { created: string; created_by: string; comment: string }): Promise<void> {
  result.layers.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
  addLayer(result.config, layer.diffId);
  addHistory(result.config, history);
  // Keep the stage's file view current without re-reading the layers below
  // (the writer saved this layer's index, so this is one small read).
  await result.fs?.addLayer(layer.digest);
}

/**
 * A RUN's working directory must exist before the executor starts (the
 * contract says so). WORKDIR already made it unless it comes from the base
 * image's config; then it gets its own small layer here. (BuildKit's runc
 * executor creates it inside the RUN's own layer instead: one layer and one
 * history entry fewer in that rare case.)
 */
async function ensureRunWorkdir(s: BuildSession, result: StageResult, dir: string, user: string, location: SourceLocation): Promise<void> {
  // `/` always exists; not opening the file view then saves indexing a large base for a RUN-only stage.
  if (dir === '/') return;
  const fs = await stageFs(s, result);
  const entries = await workdirLayerEntries(fs, dir, user || undefined, s.epoch ?? Math.floor(Date.now() / 1000), location);
  if (!entries.length) return;
  const layer = await writeLayer(entries, { store: s.store, sourceDateEpoch: s.epoch, location });
  await pushLayer(result, layer, { created: s.created, created_by: `WORKDIR ${dir}`, comment: 'ocistack: working directory of the next RUN' });
}

/** The config and layers a stage starts from. */
async function stageBase(s: BuildSession, stage: Stage): Promise<StageResult> {
  const platform = stage.platform ? parsePlatform(stage.platform) : s.platform;
  switch (stage.base.kind) {
    case 'scratch':
      return { config: emptyImageConfig(platform), layers: [] };
    case 'stage':
      return s.stages.need(stage.base.index);
    case 'image':
      return basePull(s, stage, stage.base.ref);
  }
}

/** The pull of a stage's base image: one per reference and platform, shared by the stages that name it. */
function basePull(s: BuildSession, stage: Stage, ref: string): Promise<StageResult> {
  const platform = stage.platform ? parsePlatform(stage.platform) : s.platform;
  const key = `${ref} ${formatPlatform(platform)}`;
  let p = s.bases.get(key);
  if (!p) {
    p = pullBase(s, ref, platform, stage.location, s.ids.pull(stage.index));
    p.catch(() => undefined); // awaited by the stage and the scheduler; never "unhandled" meanwhile
    s.bases.set(key, p);
  }
  return p;
}

async function pullBase(s: BuildSession, ref: string, platform: Platform, location: SourceLocation, id = s.ids.extra()): Promise<StageResult> {
  s.progress({ type: 'step', id, name: `pull ${ref}`, status: 'start' });
  try {
    const img = await pullImage({
      ref,
      store: s.store,
      platform: formatPlatform(platform),
      registry: { ...s.opts.registry, env: s.opts.registry?.env ?? s.opts.env, onProgress: s.opts.registry?.onProgress ?? s.progress },
    });
    s.progress({ type: 'step', id, name: `pull ${ref}`, status: 'done' });
    return { config: img.config, layers: img.manifest.layers.map(toOciLayer) };
  } catch (e) {
    s.progress({ type: 'step', id, name: `pull ${ref}`, status: 'error', error: e instanceof Error ? e.message : String(e) });
    throw withLocation(e, location);
  }
}

/** Docker schema 2 layer types name the same bytes as OCI's; our manifests are OCI. */
function toOciLayer(d: Descriptor): Descriptor {
  const mediaType =
    d.mediaType === MediaType.DockerLayerGzip ? MediaType.OciLayerGzip
    : d.mediaType === MediaType.DockerForeignLayerGzip ? 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip'
    : d.mediaType;
  const out: Descriptor = { mediaType, digest: d.digest, size: d.size };
  if (d.urls) out.urls = d.urls;
  return out;
}

/** `COPY --from=X` (or `RUN --mount=...,from=X`): an earlier stage by name or index, else an image reference. */
async function resolveFrom(s: BuildSession, current: Stage, from: string, location: SourceLocation, what = 'COPY --from'): Promise<StageResult> {
  const stages = s.plan.stages;
  const byName = stages.find((st) => st.name !== undefined && st.name === from.toLowerCase() && st.index < current.index);
  const byIndex = /^\d+$/.test(from) ? stages[Number(from)] : undefined;
  const st = byName ?? byIndex;
  if (st) {
    if (st.index >= current.index) {
      throw new OcistackError(`${what}=${from} refers to stage ${st.index}, which is not before this stage`, {
        code: 'DOCKERFILE_STAGE', location, hint: `${what} can only name an earlier stage`,
      });
    }
    // Waits for exactly that stage (started now if the plan did not list it, e.g. from an ONBUILD trigger).
    return s.stages.need(st.index);
  }
  let p = s.images.get(from);
  if (!p) {
    p = pullBase(s, from, s.platform, location);
    s.images.set(from, p);
  }
  return p;
}

async function stageFs(s: BuildSession, r: StageResult): Promise<ImageFs> {
  r.fs ??= await openImageFs(s.store, r.layers.map((l) => l.digest));
  return r.fs;
}

// ----------------------------------------------------------------- image ----

async function storeImage(s: BuildSession, final: StageResult): Promise<{ manifest: Descriptor; config: Descriptor }> {
  // Without SOURCE_DATE_EPOCH the image is as new as its newest step, so cached steps keep the digest.
  const config = finalizeConfig(final.config, s.epoch !== undefined ? s.created : latestHistoryCreated(final.config) ?? s.created);
  const configBytes = canonicalJson(config);
  const configPut = await s.store.putBytes(configBytes);
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: configPut.digest, size: configPut.size };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDesc,
    layers: final.layers,
  };
  const manifestPut = await s.store.putBytes(canonicalJson(manifest));
  return {
    manifest: {
      mediaType: MediaType.OciManifest,
      digest: manifestPut.digest,
      size: manifestPut.size,
      platform: { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) },
    },
    config: configDesc,
  };
}

// ---------------------------------------------------------------- checks ----

function refuseRunWithoutExecutor(plan: BuildPlan): void {
  for (const index of plan.order) {
    const run = plan.stages[index]!.instructions.find((i) => i.kind === 'run');
    if (run) {
      throw new OcistackError(NO_EXECUTOR_MESSAGE, { code: 'NO_EXECUTOR', location: run.location, hint: INSTALL_RUNC_HINT });
    }
  }
}

async function assertDirectory(dir: string): Promise<void> {
  let st;
  try {
    st = await fsp.stat(dir);
  } catch {
    throw new OcistackError(`build context "${displayPath(dir)}" does not exist`, {
      code: 'CONTEXT_MISSING', hint: 'pass the directory that holds your Dockerfile and files, e.g. "ocistack build ."',
    });
  }
  if (!st.isDirectory()) {
    throw new OcistackError(`build context "${displayPath(dir)}" is not a directory`, {
      code: 'CONTEXT_MISSING', hint: 'the context is a directory; name the Dockerfile with -f',
    });
  }
}

async function readDockerfile(file: string, name: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OcistackError(code === 'ENOENT' ? `Dockerfile "${name}" not found` : `cannot read Dockerfile "${name}": ${code}`, {
      code: 'DOCKERFILE_MISSING',
      hint: 'put a Dockerfile in the context directory or name it with -f FILE',
    });
  }
}

/** Paths in messages: relative to the cwd when inside it, as users typed them. */
function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

/** Errors without a position get the instruction's. */
function withLocation(e: unknown, location: SourceLocation): unknown {
  if (e instanceof OcistackError && !e.location && !e.registry) {
    return new OcistackError(e.message, { code: e.code, hint: e.hint, location, exitCode: e.exitCode, cause: e.cause });
  }
  return e;
}
