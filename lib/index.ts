/**
 * ocistack public API: plain async functions taking one options object
 * (isomorphic-git style). This list is intentional and documented in
 * docs/api.md; test/api-surface.test.ts fails when a name is added here
 * without being documented there (or the other way round). Everything else
 * under lib/ is internal: import it by path only in this repository's tests.
 */

// IDPBuilder stacks: every image of a stack directory, built and pushed to its Gitea
export { listStack, buildStack, pushStack } from './stack/batch.js';
export type { StackOptions, StackBuildOptions, StackListing, StackListEntry } from './stack/batch.js';
export type { GiteaAccessRequest, ResolveGiteaAccess, DiscoverStackRequest, DiscoverStack, StackPin, WritePins } from './stack/providers.js';
export type { StackResult, StackImageResult } from './stack/types.js';

// build
export { build } from './engine/build.js';
export type { BuildOptions, BuildResult, BuildOutput, RegistryCache } from './engine/options.js';
export { noExecutor } from './executor/none.js';
export { selectExecutor } from './executor/select.js';
export type { Executor, RunRequest, RunResult, RunMount as ExecutorMount, RunMountSource, ContextMountEntry, LayerChain, RunProcess } from './executor/types.js';

// Dockerfile front end: parse, plan, word expansion
export { parseDockerfile } from './dockerfile/parser.js';
export type { ParseOptions } from './dockerfile/parser.js';
export { dumpAst } from './dockerfile/dump.js';
export { plan } from './dockerfile/plan.js';
export { expandWord, expandWords } from './dockerfile/lex.js';
export type { EnvSource, EnvLookup } from './dockerfile/lex.js';
export type {
  DockerfileAst, AstInstruction, AstHeredoc, ParserDirectives, Diagnostic,
  BuildPlan, PlanOptions, Stage, StageBase, Instruction, CopyFields, HealthOptions,
} from './dockerfile/types.js';

// registries: pull, push, copy, login
export { pullImage } from './registry/pull.js';
export type { PullImageOptions, PullImageResult } from './registry/pull.js';
export { pushImage } from './registry/push.js';
export type { PushImageOptions, PushImageResult } from './registry/push.js';
export { copyImage, parseLocation, formatLocation } from './registry/copy.js';
export type { ImageLocation, CopyImageOptions, CopyImageResult } from './registry/copy.js';
export { checkLogin } from './registry/login.js';
export { storeCredentials, eraseCredentials } from './registry/credentials.js';
export { parseReference } from './registry/reference.js';
export type { ImageReference } from './registry/reference.js';
export type { RegistryOptions, Credentials, RetryPolicy } from './registry/types.js';

// IDPBuilder stacks: where the stack's Gitea is and how to reach it
export { resolveGiteaTarget, resolveGiteaAccess } from './stack/cluster.js';
export type { ResolveGiteaTargetOptions, ResolveGiteaAccessOptions } from './stack/cluster.js';
export { checkGiteaAccess } from './stack/check.js';
export type { CheckGiteaAccessOptions } from './stack/check.js';
export type { GiteaTarget, GiteaAccess } from './stack/types.js';

// layouts and archives
export { writeOciLayout, readOciLayout } from './image/layout.js';
export type { WriteOciLayoutOptions, ReadOciLayoutOptions, ReadOciLayoutResult } from './image/layout.js';
export { readDockerArchive, writeDockerArchive } from './image/archive.js';
export type { ReadDockerArchiveResult } from './image/archive.js';

// store and layers
export { BlobStore, defaultCacheDir } from './image/store.js';
export type { PutResult } from './image/store.js';
export { writeLayer } from './layer/write.js';
export type { WriteLayerOptions } from './layer/write.js';
export type { LayerEntry, LayerResult, FileMeta } from './layer/types.js';

// OCI types
export { MediaType } from './image/types.js';
export type {
  Digest, Descriptor, ImageManifest, ImageIndex, ImageConfig, ContainerConfig, HealthConfig, HistoryEntry, Platform,
} from './image/types.js';

// progress and renderers
export { createRenderer, formatPlain } from './progress/render.js';
export type { ProgressMode } from './progress/render.js';
export type { ProgressEvent, ProgressListener } from './progress/events.js';

// IDPBuilder stacks: the model of a stack directory, digest pinning
export { discoverStack } from './stack/discover.js';
export type { DiscoverStackOptions } from './stack/discover.js';
export { pinReferences, writePins } from './stack/pin.js';
export type { PinnedReference, WritePinsResult } from './stack/pin.js';
export type {
  StackModel, StackApp, StackImage, ManifestReference, StackLocation, StackWarning, ReferenceSource, ReferenceEdit, TextSpan,
} from './stack/types.js';

// errors
export { OcistackError, UsageError, isOcistackError } from './errors.js';
export type { SourceLocation, ErrorDetails } from './errors.js';
