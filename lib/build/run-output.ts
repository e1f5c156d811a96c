/**
 * A RUN's output as lines: splits the executor's chunks per stream into
 * lines for progress events, and keeps the last few lines so a failing RUN
 * can show them in its error. A partial line is held until its newline or
 * until {@link RunOutput.flush} at the end of the step.
 */
import type { ProgressListener } from '../progress/events.js';

type Stream = 'stdout' | 'stderr';

export class RunOutput {
  private readonly partial: Record<Stream, string> = { stdout: '', stderr: '' };
  private readonly ring: string[] = [];

  constructor(
    private readonly id: string,
    private readonly progress: ProgressListener,
    /** How many lines {@link lastLines} keeps. */
    private readonly keep = 10,
  ) {}

  /** The listener handed to the executor as `onOutput`. */
  readonly onOutput = (stream: Stream, chunk: Buffer): void => {
    const text = this.partial[stream] + chunk.toString('utf8');
    const lines = text.split('\n');
    this.partial[stream] = lines.pop()!;
    for (const l of lines) this.line(stream, l);
  };

  /** Emit what is left of unterminated lines. */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.line(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
  }

  /** The last lines of both streams, in the order they arrived. */
  lastLines(): string[] {
    return [...this.ring];
  }

  private line(stream: Stream, raw: string): void {
    const line = raw.replace(/\r$/, '');
    this.ring.push(line);
    if (this.ring.length > this.keep) this.ring.shift();
    this.progress({ type: 'output', id: this.id, stream, line });
  }
}
