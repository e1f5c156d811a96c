/**
 * RunMounts across the rootless worker's JSON pipe: a chain source's store
 * is an object (a BlobStore), so it travels as its root and the worker
 * opens the store again. Everything else in a RunMount is plain data.
 */
import { BlobStore } from '../../image/store.js';
import type { LayerChain, RunMount } from '../types.js';

export type JobChain = Omit<LayerChain, 'store'> & { storeRoot: string };
export type JobMount = Omit<RunMount, 'source'> & { source?: Exclude<RunMount['source'], { kind: 'chain' }> | { kind: 'chain'; chain: JobChain; path: string } };

export function toJobMounts(mounts: RunMount[]): JobMount[] {
  return mounts.map((m) => {
    if (m.source?.kind !== 'chain') return m as JobMount;
    const { store, layers, diffIds } = m.source.chain;
    return { ...m, source: { kind: 'chain', path: m.source.path, chain: { layers, diffIds, storeRoot: store.root } } };
  });
}

export function fromJobMounts(mounts: JobMount[]): RunMount[] {
  return mounts.map((m) => {
    if (m.source?.kind !== 'chain') return m as RunMount;
    const { storeRoot, layers, diffIds } = m.source.chain;
    return { ...m, source: { kind: 'chain', path: m.source.path, chain: { layers, diffIds, store: new BlobStore(storeRoot) } } };
  });
}
