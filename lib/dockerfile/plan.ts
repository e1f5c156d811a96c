/**
 * Dockerfile text -> {@link BuildPlan}: stages with their instructions,
 * FROM lines resolved with the global ARGs, the stage graph (FROM <stage>,
 * COPY --from, RUN --mount from=), the target and the stages it needs.
 */
import type { BuildPlan, Diagnostic, Instruction, PlanOptions, Stage, StageBase } from './types.js';
import { parseDockerfile } from './parser.js';
import { toInstruction, type FromSpec } from './instructions.js';
import { mountFrom } from './mounts.js';
import { closest, syntaxError } from './diagnostics.js';
import { OcistackError } from '../errors.js';
import { ShellLex, ShellLexError } from './lex.js';
import { platformArgs, PROXY_ARGS } from './platform.js';
import { secretNameWarnings } from './lint-secrets.js';

interface DraftStage {
  from: FromSpec;
  instructions: Instruction[];
}

/**
 * Plans a build. Throws OcistackError (`DOCKERFILE_SYNTAX` for the text,
 * `DOCKERFILE_STAGE` for the stage graph or target) with file:line and a hint.
 */
export function plan(text: string, opts: PlanOptions = {}): BuildPlan {
  const ast = parseDockerfile(text, { file: opts.file ?? 'Dockerfile' });
  const escape = ast.directives.escape;
  const lex = new ShellLex({ escapeToken: escape });
  const buildArgs = opts.buildArgs ?? {};
  const warnings: Diagnostic[] = [...ast.warnings];

  const metaArgs: Extract<Instruction, { kind: 'arg' }>[] = [];
  const drafts: DraftStage[] = [];
  for (const node of ast.instructions) {
    const ins = toInstruction(node);
    if (ins.kind === 'from') {
      drafts.push({ from: ins, instructions: [] });
      continue;
    }
    const current = drafts[drafts.length - 1];
    if (!current) {
      if (ins.kind === 'arg') {
        metaArgs.push(ins);
        continue;
      }
      throw syntaxError('no build stage in current context', ins.location,
        `${node.keyword.toUpperCase()} must come after a FROM; only ARG may come before the first FROM`);
    }
    current.instructions.push(ins);
  }

  // Global scope: automatic platform ARGs, then the ARGs before the first FROM.
  const globalEnv = new Map<string, string | undefined>(Object.entries(platformArgs(opts.platform)));
  const globalArgs: Record<string, string | undefined> = {};
  for (const a of metaArgs) {
    for (const { name, default: def } of a.args) {
      let value: string | undefined;
      if (Object.prototype.hasOwnProperty.call(buildArgs, name)) value = buildArgs[name];
      else if (def !== undefined) value = expand(lex, def, globalEnv, a.location);
      globalArgs[name] = value;
      if (value !== undefined) globalEnv.set(name, value);
    }
  }

  const stages: Stage[] = [];
  const byName = new Map<string, number>();
  drafts.forEach((d, index) => {
    const f = d.from;
    const baseName = expand(lex, f.baseName, globalEnv, f.location);
    if (baseName === '') {
      throw stageError(`base name (${f.baseName}) should not be blank`, f.location,
        'the FROM expression expanded to nothing: give the ARG a default or pass --build-arg');
    }
    let base: StageBase;
    const baseStage = byName.get(baseName);
    if (baseName === 'scratch') base = { kind: 'scratch' };
    else if (baseStage !== undefined) base = { kind: 'stage', index: baseStage };
    else base = { kind: 'image', ref: baseName };
    const stage: Stage = { index, baseName, base, location: f.location, instructions: d.instructions, dependsOn: [], escape, original: f.original };
    if (f.platform !== undefined) {
      const p = expand(lex, f.platform, globalEnv, f.location);
      if (p === '') throw stageError(`empty platform value from expression ${f.platform}`, f.location, 'give --platform a value like linux/amd64');
      if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+){0,2}$/.test(p)) {
        throw stageError(`failed to parse platform ${f.platform}: "${p}" is not OS/ARCH[/VARIANT]`, f.location, 'write --platform=linux/amd64, linux/arm64 or $BUILDPLATFORM');
      }
      stage.platform = p;
    }
    if (f.name !== undefined) {
      if (byName.has(f.name)) {
        const first = stages[byName.get(f.name)!]!;
        throw stageError(`duplicate stage name "${f.name}"`, f.location,
          `stage "${f.name}" is already defined on line ${first.location.line}; give this stage another name`);
      }
      stage.name = f.name;
      byName.set(f.name, index);
    }
    stages.push(stage);
  });
  const allByName = new Map(stages.filter((s) => s.name !== undefined).map((s) => [s.name!, s.index]));

  // Edges: base stage, COPY --from, RUN --mount from=.
  for (const stage of stages) {
    const deps = new Set<number>();
    if (stage.base.kind === 'stage') deps.add(stage.base.index);
    for (const ins of stage.instructions) {
      const refs: { ref: string; what: string }[] = [];
      if ((ins.kind === 'copy' || ins.kind === 'add') && ins.from !== undefined) refs.push({ ref: ins.from, what: 'COPY --from' });
      if (ins.kind === 'run') {
        for (const m of ins.mounts) {
          const from = mountFrom(m);
          if (from !== undefined && from !== '') refs.push({ ref: from, what: 'RUN --mount from' });
        }
      }
      for (const { ref, what } of refs) {
        const dep = stageRef(ref, what, stage, stages, allByName, ins.location);
        if (dep !== undefined) deps.add(dep);
      }
    }
    stage.dependsOn = [...deps].sort((a, b) => a - b);
  }

  if (stages.length === 0) {
    throw syntaxError('no FROM instruction', { file: ast.file, line: 1 }, 'a Dockerfile needs at least one FROM');
  }
  let target = stages.length - 1;
  if (opts.target !== undefined && opts.target !== '') {
    const t = allByName.get(opts.target.toLowerCase());
    if (t === undefined) {
      const names = [...allByName.keys()];
      const guess = closest(opts.target, names);
      throw stageError(`target stage "${opts.target}" could not be found`, undefined,
        guess ? `did you mean "${guess}"?` : names.length ? `stages in ${ast.file}: ${names.join(', ')}` : `${ast.file} has no named stages; name one with FROM <image> AS <name>`);
    }
    target = t;
  }

  const order = dependencyOrder(stages, target);

  // --build-arg nobody declares: BuildKit warns that it was not consumed.
  const declared = new Set<string>(Object.keys(globalArgs));
  for (const i of order) for (const ins of stages[i]!.instructions) if (ins.kind === 'arg') for (const a of ins.args) declared.add(a.name);
  const predefined = new Set([...PROXY_ARGS, ...Object.keys(platformArgs())]);
  const unused = Object.keys(buildArgs).filter((k) => !declared.has(k) && !predefined.has(k));
  if (unused.length) {
    warnings.push({ message: `One or more build-args [${unused.join(' ')}] were not consumed` });
  }

  warnings.push(...secretNameWarnings(text, stages, order, ast.directives.check));

  return { file: ast.file, stages, target, order, globalArgs, warnings, escape, directives: ast.directives };
}

function expand(lex: ShellLex, word: string, env: Map<string, string | undefined>, location: Stage['location']): string {
  try {
    return lex.processWord(word, env);
  } catch (e) {
    if (e instanceof ShellLexError) throw syntaxError(e.message, location, 'check the ${...} expression and its quoting');
    throw e;
  }
}

function stageError(message: string, location: Stage['location'] | undefined, hint: string): OcistackError {
  return new OcistackError(message, location ? { code: 'DOCKERFILE_STAGE', location, hint } : { code: 'DOCKERFILE_STAGE', hint });
}

/** Resolves a `--from` reference to an earlier stage index, or undefined for an image. */
function stageRef(ref: string, what: string, stage: Stage, stages: Stage[], byName: Map<string, number>, location: Stage['location']): number | undefined {
  if (ref.includes('$')) {
    throw stageError(`variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround`, location,
      'write ARG X before the first FROM, then FROM ${X} AS src and use --from=src');
  }
  let index: number | undefined;
  if (/^[+-]?[0-9]+$/.test(ref)) {
    index = Number(ref);
    if (index < 0 || index >= stages.length) {
      throw stageError(`invalid stage index ${index}`, location, `stage indexes go from 0 to ${stages.length - 1}`);
    }
  } else {
    index = byName.get(ref.toLowerCase());
  }
  if (index === undefined) return undefined;
  if (index >= stage.index) {
    const label = stages[index]!.name ?? String(index);
    throw stageError(`cannot copy from stage "${label}", it needs to be defined before current stage "${stage.name ?? `stage-${stage.index}`}"`, location,
      `${what} can only name a stage defined above this one; move stage "${label}" before line ${stage.location.line}`);
  }
  return index;
}

/**
 * Stages the target needs, each after its dependencies: a depth-first walk
 * with an explicit stack (a chain of 10,000 stages would overflow the call
 * stack), which is also the path reported for a cycle.
 */
function dependencyOrder(stages: Stage[], target: number): number[] {
  const order: number[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const stack: { stage: number; next: number }[] = [{ stage: target, next: 0 }];
  state.set(target, 'visiting');
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const deps = stages[top.stage]!.dependsOn;
    if (top.next >= deps.length) {
      state.set(top.stage, 'done');
      order.push(top.stage);
      stack.pop();
      continue;
    }
    const d = deps[top.next++]!;
    const s = state.get(d);
    if (s === 'done') continue;
    if (s === 'visiting') {
      const path = stack.map((f) => f.stage);
      const cycle = [...path.slice(path.indexOf(d)), d].map((n) => stages[n]!.name ?? String(n)).join(' -> ');
      throw stageError(`circular dependency between stages: ${cycle}`, stages[d]!.location, 'break the cycle by removing one of the COPY --from / FROM references');
    }
    state.set(d, 'visiting');
    stack.push({ stage: d, next: 0 });
  }
  return order;
}
