/**
 * ocistack public API. Plain async functions taking one options object
 * (isomorphic-git style); each concern lives in its own folder under lib/.
 */
export * from './errors.js';
export * from './image/types.js';
export * from './image/digest.js';
export * from './image/store.js';
export * from './layer/types.js';
export type { Executor, RunRequest, RunResult, RunMount as ExecutorMount } from './executor/types.js';
export { noExecutor } from './executor/none.js';
export * from './progress/events.js';
export type * from './dockerfile/types.js';
export * from './dockerfile/index.js';
export * from './registry/index.js';
export * from './image/layout.js';
export * from './context/index.js';
export * from './layer/index.js';
export { build } from './build/build.js';
export type { BuildOptions, BuildResult, BuildOutput } from './build/options.js';
export { emptyImageConfig, applyInstruction, finalizeConfig, getEnv, setEnv } from './image/config.js';
export { createRenderer, formatPlain } from './progress/render.js';
export type { ProgressMode } from './progress/render.js';
export * from './image/archive.js';
