/**
 * A ContextSource that hands every required call to another source and has
 * none of the optional ones (no readHead, no synchronous calls): tests
 * subclass it to count or change one call, or use it as is to make
 * BuildContext take the promise-only paths.
 */
import type { ContextSource } from '../../lib/context/source.js';

export class PassThroughSource implements ContextSource {
  constructor(protected readonly inner: ContextSource) {}
  get description(): string {
    return this.inner.description;
  }
  lstat(rel: string) {
    return this.inner.lstat(rel);
  }
  readdir(rel: string) {
    return this.inner.readdir(rel);
  }
  readlink(rel: string) {
    return this.inner.readlink(rel);
  }
  open(rel: string) {
    return this.inner.open(rel);
  }
  checkReadable(rel: string) {
    return this.inner.checkReadable(rel);
  }
}
