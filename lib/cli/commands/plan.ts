/**
 * `ocistack plan [-f FILE] [--target T] [--build-arg K=V] [--format text|json|ast] [CONTEXT]`:
 * shows the stage graph the build would follow, without building.
 */
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { OcistackError, UsageError } from '../../errors.js';
import { plan, parseDockerfile, dumpAst } from '../../dockerfile/index.js';
import type { BuildPlan, Instruction, Stage } from '../../dockerfile/types.js';
import { flagList, flagString, parseArgs, parseKeyValues, type FlagSpec } from '../args.js';
import type { CliCommand, CliIO } from '../types.js';
import { redactUrlCredentials } from '../../redact.js';

const specs: FlagSpec[] = [
  { name: 'file', short: 'f', type: 'string' },
  { name: 'target', type: 'string' },
  { name: 'build-arg', type: 'list' },
  { name: 'platform', type: 'string' },
  { name: 'format', type: 'string' },
];

const FORMATS = ['text', 'json', 'ast'];

const help = `Usage: ocistack plan [OPTIONS] [CONTEXT]

Show the build plan of a Dockerfile: its stages, what each is built from,
which stages the target needs (and in which order) and which are skipped.
Nothing is pulled or built.

Options:
  -f, --file FILE          Dockerfile (default CONTEXT/Dockerfile)
      --target STAGE       plan this stage instead of the last one
      --build-arg K=V      set a build argument (repeatable; K alone takes it from the environment)
      --platform OS/ARCH   target platform for TARGETPLATFORM & co (default: this machine)
      --format FORMAT      text (default), json (the BuildPlan object) or ast (BuildKit's parser dump)
  -h, --help               show this help

Exit status: 0 planned, 1 the Dockerfile has an error, 2 usage error.
`;

export const command: CliCommand = {
  name: 'plan',
  summary: 'Show the stage graph of a Dockerfile without building',
  help,
  async run(argv: string[], io: CliIO): Promise<number> {
    const p = parseArgs(argv, specs, 'plan');
    if (p.positionals.length > 1) {
      throw new UsageError(`plan takes one context directory, got ${p.positionals.length}: ${p.positionals.join(' ')}`, 'see "ocistack plan --help"');
    }
    const format = flagString(p, 'format') ?? 'text';
    if (!FORMATS.includes(format)) throw new UsageError(`--format "${format}" is not a plan format`, `use one of ${FORMATS.join(', ')}`);
    const context = path.resolve(io.cwd, p.positionals[0] ?? '.');
    const fileFlag = flagString(p, 'file');
    const file = fileFlag !== undefined ? path.resolve(io.cwd, fileFlag) : path.join(context, 'Dockerfile');
    const shown = path.relative(io.cwd, file) || file;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new OcistackError(`cannot read ${shown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        code: 'DOCKERFILE_NOT_FOUND',
        hint: fileFlag ? 'check the -f path' : `there is no Dockerfile in ${path.relative(io.cwd, context) || '.'}; name one with -f`,
        cause: e,
      });
    }
    if (format === 'ast') {
      io.stdout.write(dumpAst(parseDockerfile(text, { file: shown })));
      return 0;
    }
    const result = plan(text, {
      file: shown,
      buildArgs: parseKeyValues(flagList(p, 'build-arg'), 'build-arg', io.env),
      target: flagString(p, 'target'),
      platform: flagString(p, 'platform'),
    });
    io.stdout.write(format === 'json' ? JSON.stringify(result, null, 2) + '\n' : renderPlan(result));
    return 0;
  },
};

function stageLabel(s: Stage): string {
  return s.name !== undefined ? `${s.index} (${s.name})` : String(s.index);
}

/** Human-readable plan: one block per stage, needed ones in build order first. */
export function renderPlan(p: BuildPlan): string {
  const lines: string[] = [];
  const target = p.stages[p.target]!;
  lines.push(`${p.file}: ${p.stages.length} stage${p.stages.length === 1 ? '' : 's'}, target ${stageLabel(target)}`);
  lines.push(`build order: ${p.order.map((i) => stageLabel(p.stages[i]!)).join(' -> ')}`);
  const globals = Object.entries(p.globalArgs);
  if (globals.length) lines.push(`global ARGs: ${globals.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join(' ')}`);
  const needed = new Set(p.order);
  for (const i of [...p.order, ...p.stages.map((s) => s.index).filter((i) => !needed.has(i))]) {
    const s = p.stages[i]!;
    lines.push('');
    const from = s.base.kind === 'scratch' ? 'scratch' : s.base.kind === 'image' ? `image ${s.base.ref}` : `stage ${stageLabel(p.stages[s.base.index]!)}`;
    const mark = needed.has(i) ? (i === p.target ? ' [target]' : '') : ' [skipped: the target does not need it]';
    lines.push(`stage ${stageLabel(s)}${mark}`);
    lines.push(`  from:  ${from}${s.platform ? ` (platform ${s.platform})` : ''}   ${s.location.file}:${s.location.line}`);
    if (s.dependsOn.length) lines.push(`  needs: ${s.dependsOn.map((d) => stageLabel(p.stages[d]!)).join(', ')}`);
    for (const ins of s.instructions) lines.push(`  ${String(ins.location.line).padStart(4)}  ${describe(ins)}`);
  }
  if (p.warnings.length) {
    lines.push('', 'warnings:');
    for (const w of p.warnings) lines.push(`  ${w.location ? `${w.location.file}:${w.location.line}: ` : ''}${w.message}`);
  }
  return lines.join('\n') + '\n';
}

function describe(ins: Instruction): string {
  const first = redactUrlCredentials(ins.original.split('\n')[0]!);
  return first.length > 100 ? first.slice(0, 97) + '...' : first;
}
