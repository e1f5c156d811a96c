/**
 * For tests that call an Executor directly: the busybox test image as a
 * LayerChain in a store of the test's own (the change layers are written
 * into it), and one RUN step with its output collected.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from '../../lib/image/store.js';
import type { ImageManifest } from '../../lib/image/types.js';
import type { Executor, LayerChain, RunRequest, RunResult } from '../../lib/executor/types.js';
import { BUSYBOX_PATH, busyboxLayout } from './images.js';

/** The busybox image's layers copied into a new store at `storeDir`. */
export async function busyboxChain(storeDir: string): Promise<LayerChain> {
  const layout = await busyboxLayout();
  const src = new BlobStore(layout.dir);
  const index = JSON.parse(fs.readFileSync(join(layout.dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(src.path(index.manifests[0].digest), 'utf8')) as ImageManifest;
  const config = JSON.parse(fs.readFileSync(src.path(manifest.config.digest), 'utf8'));
  const store = new BlobStore(storeDir);
  for (const l of manifest.layers) await store.putBytes(fs.readFileSync(src.path(l.digest)));
  return { store, layers: manifest.layers, diffIds: config.rootfs.diff_ids };
}

export interface Ran extends RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Run `/bin/sh -c script` as root in `/` with busybox's PATH, no mounts,
 * default network; `extra` overrides any field of the request.
 */
export async function runScript(executor: Executor, base: { chain: LayerChain; cacheDir: string }, script: string, extra: Partial<RunRequest> = {}): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const r = await executor.run({
    chain: base.chain,
    process: { args: ['/bin/sh', '-c', script], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: '' },
    mounts: [],
    network: 'default',
    security: 'sandbox',
    location: { file: 'Dockerfile', line: 3 },
    stepId: '#1',
    cacheDir: base.cacheDir,
    onOutput: (stream, chunk) => {
      if (stream === 'stdout') stdout += chunk.toString();
      else stderr += chunk.toString();
    },
    ...extra,
  });
  return { ...r, stdout, stderr };
}
