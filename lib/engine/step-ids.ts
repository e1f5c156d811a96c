/**
 * Step ids (`#N` in progress events and step reports), numbered up front
 * from the plan: for each stage the target needs, in the plan's order, the
 * pull of its base image (when it has one) then one per instruction. Stages
 * run in parallel and finish in any order, so numbering as steps start
 * would give the same step another id from one build to the next; this way
 * a step's id depends only on the Dockerfile and the target.
 *
 * Steps the plan cannot know (the base image's ONBUILD triggers, the pull of
 * an image named by `COPY --from=IMAGE`) are numbered after all planned
 * ones, as they start: still unique, stable whenever stages run one at a time.
 * Two stages on the same base image share one pull, so the second stage's
 * pull number is never shown (ids may have gaps; they are names, not counts).
 */
import type { BuildPlan } from '../dockerfile/types.js';

export class StepIds {
  private readonly pulls = new Map<number, string>();
  private readonly instructions = new Map<number, string[]>();
  private next: number;

  constructor(plan: BuildPlan) {
    let n = 0;
    for (const index of plan.order) {
      const stage = plan.stages[index]!;
      if (stage.base.kind === 'image') this.pulls.set(index, `#${++n}`);
      this.instructions.set(index, stage.instructions.map(() => `#${++n}`));
    }
    this.next = n;
  }

  /** The id of the pull of stage `stage`'s base image. */
  pull(stage: number): string {
    return this.pulls.get(stage) ?? this.extra();
  }

  /** The id of instruction `n` (0-based, ONBUILD triggers not counted) of stage `stage`. */
  instruction(stage: number, n: number): string {
    return this.instructions.get(stage)?.[n] ?? this.extra();
  }

  /** An id for a step the plan does not list. */
  extra(): string {
    return `#${++this.next}`;
  }
}
