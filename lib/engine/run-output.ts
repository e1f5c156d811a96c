/**
 * A RUN's output as lines: splits the executor's chunks per stream into
 * lines for progress events, and keeps the last few lines so a failing RUN
 * can show them in its error. A partial line is held until its newline or
 * until {@link RunOutput.flush} at the end of the step.
 */
import { StringDecoder } from 'node:string_decoder';
import type { ProgressListener } from '../progress/events.js';

type Stream = 'stdout' | 'stderr';

/**
 * A line longer than this is sent in pieces of this size, so a process that
 * prints megabytes without a newline cannot grow the held partial line.
 */
export const MAX_LINE_CHARS = 16 * 1024;

export class RunOutput {
  private readonly partial: Record<Stream, string> = { stdout: '', stderr: '' };
  private readonly ring: string[] = [];
  // One decoder per stream: a UTF-8 character cut between two chunks is kept whole.
  private readonly decoders: Record<Stream, StringDecoder> = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };

  constructor(
    private readonly id: string,
    private readonly progress: ProgressListener,
    /** How many lines {@link lastLines} keeps. */
    private readonly keep = 10,
  ) {}

  /** The listener handed to the executor as `onOutput`. */
  readonly onOutput = (stream: Stream, chunk: Buffer): void => {
    const text = this.partial[stream] + this.decoders[stream].write(chunk);
    const lines = text.split('\n');
    let rest = lines.pop()!;
    for (const l of lines) this.line(stream, l);
    while (rest.length > MAX_LINE_CHARS) {
      this.line(stream, rest.slice(0, MAX_LINE_CHARS));
      rest = rest.slice(MAX_LINE_CHARS);
    }
    this.partial[stream] = rest;
  };

  /** Emit what is left of unterminated lines. */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.partial[stream] + this.decoders[stream].end();
      if (rest !== '') this.line(stream, rest);
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
