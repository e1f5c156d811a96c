/**
 * AST instruction -> typed {@link Instruction}, with BuildKit's argument
 * counts, flag sets and messages (frontend/dockerfile/instructions/parse.go).
 * Words stay unexpanded here; {@link dispatch} expands them.
 */
import type { SourceLocation } from '../errors.js';
import type { AstHeredoc, AstInstruction, HealthOptions, Instruction } from './types.js';
import { closest, instructionError } from './diagnostics.js';
import { parseFlags, type FlagKind } from './flags.js';
import { chompHeredocContent, INSTRUCTION_KEYWORDS, parseHeredoc } from './parser.js';
import { parseGoDuration } from './duration.js';
import { MountError, parseMount } from './mounts.js';

/** A FROM line, before its words are expanded with the global ARGs. */
export interface FromSpec {
  kind: 'from';
  /** Image reference, `scratch` or a stage name, unexpanded. */
  baseName: string;
  /** `AS name`, lower-cased. */
  name?: string;
  platform?: string;
  location: SourceLocation;
  original: string;
}

const err = (msg: string, node: AstInstruction, hint: string) => instructionError(msg, node.original, node.location, hint);

/** Converts one AST node; throws DOCKERFILE_SYNTAX for unknown instructions, bad flags or argument counts. */
export function toInstruction(node: AstInstruction): Instruction | FromSpec {
  const loc = node.location;
  const original = node.original.trim();
  const upper = node.keyword.toUpperCase();
  const base = { location: loc, original };
  const noFlags = () => parseFlags(node.keyword, node.flags, {}, loc, node.original);
  const exactlyOne = () => {
    if (node.args.length !== 1) throw err(`${upper} requires exactly one argument`, node, `write ${upper} <value>`);
    return node.args[0]!;
  };
  const atLeastOne = () => {
    if (node.args.length === 0) throw err(`${upper} requires at least one argument`, node, `give ${upper} an argument`);
  };
  switch (node.keyword) {
    case 'from': {
      const f = parseFlags('from', node.flags, { platform: 'string' }, loc, node.original);
      const args = node.args;
      let name: string | undefined;
      if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
        name = args[2]!.toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) {
          throw err(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`, node,
            'stage names start with a letter and use only letters, digits, "-", "_" and "."');
        }
      } else if (args.length !== 1) {
        throw err('FROM requires either one or three arguments', node, 'write FROM <image> [AS <name>]');
      }
      const spec: FromSpec = { kind: 'from', baseName: args[0]!, location: loc, original };
      if (name !== undefined) spec.name = name;
      const p = f.string('platform');
      if (p !== undefined) spec.platform = p;
      return spec;
    }
    case 'arg': {
      noFlags();
      atLeastOne();
      const args = node.args.map((a) => {
        const eq = a.indexOf('=');
        if (eq === 0) throw err('ARG names can not be blank', node, 'write ARG NAME[=default]');
        return eq < 0 ? { name: a } : { name: a.slice(0, eq), default: a.slice(eq + 1) };
      });
      return { kind: 'arg', args, ...base };
    }
    case 'env':
    case 'label': {
      noFlags();
      if (node.args.length === 0) throw err(`${upper} requires at least one argument`, node, `write ${upper} key=value`);
      const pairs: { key: string; value: string }[] = [];
      for (let j = 0; j < node.args.length; j += 3) {
        if (node.args[j] === '') throw err(`${upper} names can not be blank`, node, `write ${upper} key=value`);
        pairs.push({ key: node.args[j]!, value: node.args[j + 1] ?? '' });
      }
      return { kind: node.keyword, pairs, ...base };
    }
    case 'expose':
      atLeastOne();
      noFlags();
      return { kind: 'expose', ports: [...node.args].sort(), ...base };
    case 'workdir':
      noFlags();
      return { kind: 'workdir', path: exactlyOne(), ...base };
    case 'user':
      noFlags();
      return { kind: 'user', user: exactlyOne(), ...base };
    case 'volume': {
      atLeastOne();
      noFlags();
      const paths = node.args.map((v) => v.trim());
      if (paths.some((v) => v === '')) throw err('VOLUME specified can not be an empty string', node, 'give VOLUME a path');
      return { kind: 'volume', paths, ...base };
    }
    case 'stopsignal':
      noFlags();
      return { kind: 'stopsignal', signal: exactlyOne(), ...base };
    case 'maintainer':
      noFlags();
      return { kind: 'maintainer', name: exactlyOne(), ...base };
    case 'onbuild':
      return onbuild(node, base);
    case 'shell': {
      noFlags();
      if (node.args.length === 0) throw err('SHELL requires at least one argument', node, 'write SHELL ["executable", "parameters"]');
      if (!node.json) throw err('SHELL requires the arguments to be in JSON form', node, 'write SHELL ["executable", "parameters"]');
      return { kind: 'shell', shell: [...node.args], ...base };
    }
    case 'cmd':
    case 'entrypoint':
      noFlags();
      return { kind: node.keyword, args: jsonArgs(node), shellForm: !node.json, ...base };
    case 'run':
      return run(node, base);
    case 'healthcheck':
      return healthcheck(node, base);
    case 'copy':
    case 'add':
      return copyOrAdd(node, base);
  }
  const guess = closest(node.keyword, INSTRUCTION_KEYWORDS);
  throw err(`unknown instruction: ${node.keywordRaw ?? upper}`, node,
    guess ? `did you mean ${guess.toUpperCase()}?` : `instructions are ${INSTRUCTION_KEYWORDS.map((k) => k.toUpperCase()).join(', ')}`);
}

/** Exec form: the JSON items; shell form: the text as one string (BuildKit handleJSONArgs). */
function jsonArgs(node: AstInstruction): string[] {
  if (node.args.length === 0) return [];
  return node.json ? [...node.args] : [node.args.join(' ')];
}

function onbuild(node: AstInstruction, base: { location: SourceLocation; original: string }): Instruction {
  parseFlags('onbuild', node.flags, {}, node.location, node.original);
  if (!node.sub) throw err('ONBUILD requires at least one argument', node, 'write ONBUILD <instruction>');
  const trigger = node.sub.keyword.toUpperCase();
  if (trigger === 'ONBUILD') throw err('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', node, 'remove the second ONBUILD');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') throw err(`${trigger} isn't allowed as an ONBUILD trigger`, node, 'use ONBUILD with another instruction');
  // Validate the trigger now so mistakes show at the ONBUILD line, not in a later build.
  toInstruction({ ...node.sub, location: node.location });
  let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of node.heredocs) expression += '\n' + h.content + h.name;
  return { kind: 'onbuild', trigger: expression, ...base };
}

const RUN_NETWORKS = ['default', 'none', 'host'];
const RUN_SECURITY = ['sandbox', 'insecure'];

function run(node: AstInstruction, base: { location: SourceLocation; original: string }): Instruction {
  const f = parseFlags('run', node.flags, { mount: 'strings', network: 'string', security: 'string', device: 'strings' }, node.location, node.original);
  const network = f.string('network');
  if (network !== undefined && !RUN_NETWORKS.includes(network)) {
    throw err(`unsupported network mode: ${network}`, node, `--network takes ${RUN_NETWORKS.join(', ')}`);
  }
  const security = f.string('security');
  if (security !== undefined && !RUN_SECURITY.includes(security)) {
    throw err(`unsupported security mode ${security}`, node, `--security takes ${RUN_SECURITY.join(', ')}`);
  }
  const mounts = f.strings('mount');
  for (const m of mounts) validateMount(m, node);
  const out: Extract<Instruction, { kind: 'run' }> = {
    kind: 'run',
    args: jsonArgs(node),
    shellForm: !node.json,
    // kept as written: dispatch decides, like BuildKit, whether the shell or ocistack strips the tabs
    heredocs: node.heredocs.map((h) => ({ ...h })),
    mounts,
    ...base,
  };
  if (network !== undefined) out.network = network;
  if (security !== undefined) out.security = security;
  return out;
}

/** Checks a `--mount` spec now, leaving values that hold variables for dispatch. */
function validateMount(spec: string, node: AstInstruction): void {
  try {
    parseMount(spec);
  } catch (e) {
    if (e instanceof MountError) throw err(e.message, node, e.hint);
    throw e;
  }
}

function healthcheck(node: AstInstruction, base: { location: SourceLocation; original: string }): Instruction {
  if (node.args.length === 0) throw err('HEALTHCHECK requires at least one argument', node, 'write HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE');
  const typ = node.args[0]!.toUpperCase();
  const rest = node.args.slice(1);
  if (typ === 'NONE') {
    if (rest.length !== 0) throw err('HEALTHCHECK NONE takes no arguments', node, 'write HEALTHCHECK NONE alone');
    return { kind: 'healthcheck', none: true, options: {}, ...base };
  }
  const f = parseFlags('healthcheck', node.flags, { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' }, node.location, node.original);
  if (typ !== 'CMD') throw err(`Unknown type "${node.args[0]}" in HEALTHCHECK (try CMD)`, node, 'write HEALTHCHECK [OPTIONS] CMD command');
  const test = node.json ? rest : rest.length ? [rest.join(' ')] : [];
  if (test.length === 0) throw err('Missing command after HEALTHCHECK CMD', node, 'write HEALTHCHECK CMD <command>');
  const options: HealthOptions = {};
  const durations: [keyof HealthOptions, string][] = [['interval', 'interval'], ['timeout', 'timeout'], ['startPeriod', 'start-period'], ['startInterval', 'start-interval']];
  for (const [key, flag] of durations) {
    const v = f.string(flag);
    if (v === undefined || v === '') continue;
    let ns: number;
    try {
      ns = parseGoDuration(v);
    } catch (e) {
      throw err((e as Error).message, node, `--${flag} takes a duration like 30s, 1m30s or 500ms`);
    }
    if (ns !== 0 && ns < 1e6) throw err(`Interval "${flag}" cannot be less than 1ms`, node, `give --${flag} at least 1ms (or 0 for the default)`);
    options[key] = v;
  }
  const retries = f.string('retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?[0-9]+$/.test(retries) || Math.abs(Number(retries)) > 2147483647) {
      throw err(`strconv.ParseInt: parsing ${JSON.stringify(retries)}: invalid syntax`, node, '--retries takes a whole number');
    }
    if (Number(retries) < 0) throw err(`--retries cannot be negative (${Number(retries)})`, node, '--retries takes 0 or more');
    options.retries = retries;
  }
  return { kind: 'healthcheck', none: false, test, shellForm: !node.json, options, ...base };
}

function copyOrAdd(node: AstInstruction, base: { location: SourceLocation; original: string }): Instruction {
  const upper = node.keyword.toUpperCase();
  const isAdd = node.keyword === 'add';
  const spec: Record<string, FlagKind> = isAdd
    ? { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', unpack: 'bool', exclude: 'strings' }
    : { chown: 'string', from: 'string', chmod: 'string', link: 'bool', exclude: 'strings', parents: 'bool' };
  if (node.args.length < 2) {
    throw err(`${upper} requires at least two arguments, but only one was provided. Destination could not be determined`, node,
      `write ${upper} <source>... <destination>`);
  }
  const f = parseFlags(node.keyword, node.flags, spec, node.location, node.original);
  const dest = node.args[node.args.length - 1]!;
  if (parseHeredoc(dest)) throw err(`${upper} cannot accept a heredoc as a destination`, node, `put the destination after the heredoc, e.g. ${upper} <<EOF /file`);
  const byName = new Map(node.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const heredocs: AstHeredoc[] = [];
  for (const src of node.args.slice(0, -1)) {
    const h = node.json ? undefined : parseHeredoc(src);
    if (h) {
      const body = byName.get(h.name);
      heredocs.push({ name: h.name, expand: h.expand, chomp: h.chomp, content: h.chomp ? chompHeredocContent(body?.content ?? '') : body?.content ?? '' });
    } else {
      sources.push(src);
    }
  }
  const out: Extract<Instruction, { kind: 'copy' | 'add' }> = {
    kind: node.keyword as 'copy' | 'add',
    sources,
    dest,
    heredocs,
    link: f.bool('link'),
    parents: f.bool('parents'),
    exclude: f.strings('exclude'),
    keepGitDir: f.bool('keep-git-dir'),
    ...base,
  };
  const from = f.string('from');
  if (from !== undefined && from !== '') out.from = from;
  const chown = f.string('chown');
  if (chown) out.chown = chown;
  const chmod = f.string('chmod');
  if (chmod) out.chmod = chmod;
  const checksum = f.string('checksum');
  if (checksum) out.checksum = checksum;
  if (f.used('unpack')) out.unpack = f.bool('unpack');
  return out;
}
