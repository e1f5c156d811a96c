/**
 * Which earlier stages an instruction reads (`COPY --from=<stage>`,
 * `RUN --mount=...,from=<stage>`), found the way the engine's resolveFrom
 * finds them (a stage named so before this one, else a stage index; an
 * image reference otherwise). The stage loop waits for them before the
 * step starts, so a step's progress and duration do not include the wait.
 */
import { mountFrom } from '../dockerfile/mounts.js';
import type { Instruction, Stage } from '../dockerfile/types.js';

export function stagesUsedBy(stages: Stage[], current: Stage, instr: Instruction): number[] {
  const refs: string[] = [];
  if ((instr.kind === 'copy' || instr.kind === 'add') && instr.from !== undefined) refs.push(instr.from);
  if (instr.kind === 'run') {
    for (const m of instr.mounts) {
      const from = mountFrom(m);
      if (from) refs.push(from);
    }
  }
  const out: number[] = [];
  for (const from of refs) {
    const byName = stages.find((st) => st.name !== undefined && st.name === from.toLowerCase() && st.index < current.index);
    const st = byName ?? (/^\d+$/.test(from) ? stages[Number(from)] : undefined);
    // A later stage is an error resolveFrom reports at the step; not waited for here.
    if (st && st.index < current.index && !out.includes(st.index)) out.push(st.index);
  }
  return out;
}
