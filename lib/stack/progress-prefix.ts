/**
 * Progress of several builds at once through one renderer: every event of an
 * image's build gets `[name] ` in front of its id (steps, RUN output, blobs)
 * or its text (info, warnings, logs), so the existing plain/tty/json
 * renderers show whose event it is without knowing about stacks.
 */
import type { ProgressEvent, ProgressListener } from '../progress/events.js';

/** The prefix every event of image `name` carries. */
export function imagePrefix(name: string): string {
  return `[${name}] `;
}

export function prefixEvent(name: string, e: ProgressEvent): ProgressEvent {
  const p = imagePrefix(name);
  switch (e.type) {
    case 'step':
    case 'output':
    case 'blob':
      return { ...e, id: `${p}${e.id}` };
    case 'log':
      return { ...e, ...(e.id !== undefined ? { id: `${p}${e.id}` } : {}), text: e.text.replace(/^(?=.)/gm, p) };
    case 'warning':
    case 'info':
      return { ...e, message: `${p}${e.message}` };
    case 'build':
      return { ...e, image: name };
  }
}

/** A listener for image `name`'s build that forwards prefixed events to `to`. */
export function prefixedListener(name: string, to: ProgressListener): ProgressListener {
  return (e) => to(prefixEvent(name, e));
}
