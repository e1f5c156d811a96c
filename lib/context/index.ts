/** Build context: the files a build reads, and `.dockerignore`. */
export { BuildContext, openContext, type ContextEntry, type OpenContextOptions } from './context.js';
export { IgnoreMatcher, parseDockerignore, cleanPath } from './ignore.js';
export { FsContextSource, normalizeContextPath, compareCodeUnits, type ContextSource, type ContextStat, type ContextEntryType } from './source.js';
export { resolveScoped, type ScopedFs } from './resolve.js';
