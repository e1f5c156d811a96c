/** Dockerfile front end: parse, dump, expand words, plan stages, dispatch instructions. */
export { parseDockerfile, parseHeredoc, chompHeredocContent, INSTRUCTION_KEYWORDS } from './parser.js';
export type { ParseOptions } from './parser.js';
export { dumpAst, dumpInstruction } from './dump.js';
export { ShellLex, ShellLexError, expandWord, expandWords, envLookup } from './lex.js';
export type { EnvLookup, EnvSource, ShellLexOptions, ProcessResult } from './lex.js';
export { toInstruction } from './instructions.js';
export { parseMount, splitMountFields, joinMountFields, mountFrom, MountError } from './mounts.js';
export type { FromSpec } from './instructions.js';
export { plan } from './plan.js';
export { newStageState, dispatch, parseOnbuildTriggers, expansionEnv, runEnv } from './dispatch.js';
export type { NewStageStateOptions } from './dispatch.js';
export { platformArgs, parsePlatformString, PROXY_ARGS } from './platform.js';
export { parseExposePort } from './expose.js';
export { parseGoDuration, formatGoDuration } from './duration.js';
