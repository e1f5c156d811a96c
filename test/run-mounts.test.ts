/**
 * `RUN --mount` in the runc executor (lib/executor/runc/step-mounts.ts),
 * against the real runc as root with the busybox chain of
 * test/helpers/images.ts: what the step sees at the mount target, and that
 * nothing of the mount (nor its target, when the image lacks it) reaches
 * the change layer. Types not implemented yet keep RUN_MOUNT_UNSUPPORTED.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import type { Descriptor, Digest, ImageManifest } from '../lib/image/types.js';
import { indexLayer } from '../lib/layer/index.js';
import type { RunMount, RunRequest, RunResult } from '../lib/executor/types.js';
import { createRuncExecutor, runcStepsDir } from '../lib/executor/runc/index.js';
import { mountPoints } from '../lib/executor/runc/overlay.js';
import { OcistackError } from '../lib/errors.js';
import { BUSYBOX_PATH, busyboxLayout } from './helpers/images.js';
import { makeTempDir, requireTool } from './helpers/tools.js';

let chain: { store: BlobStore; layers: Descriptor[]; diffIds: Digest[] };
let cacheDir: string;
const executor = createRuncExecutor({ runc: requireTool('runc') });

test.before(async () => {
  const layout = await busyboxLayout();
  const src = new BlobStore(layout.dir);
  const index = JSON.parse(fs.readFileSync(join(layout.dir, 'index.json'), 'utf8'));
  const manifest = JSON.parse(fs.readFileSync(src.path(index.manifests[0].digest), 'utf8')) as ImageManifest;
  const config = JSON.parse(fs.readFileSync(src.path(manifest.config.digest), 'utf8'));
  const store = new BlobStore(makeTempDir('mounts-store'));
  for (const l of manifest.layers) await store.putBytes(fs.readFileSync(src.path(l.digest)));
  chain = { store, layers: manifest.layers, diffIds: config.rootfs.diff_ids };
  cacheDir = makeTempDir('mounts-cache');
});

interface Ran extends RunResult {
  stdout: string;
  stderr: string;
}

async function runStep(script: string, mounts: RunMount[], extra: Partial<RunRequest> = {}): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const r = await executor.run({
    chain,
    process: { args: ['/bin/sh', '-c', script], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/', user: '' },
    mounts,
    network: 'default',
    security: 'sandbox',
    location: { file: 'Dockerfile', line: 5 },
    stepId: '#1',
    cacheDir,
    onOutput: (stream, chunk) => {
      if (stream === 'stdout') stdout += chunk.toString();
      else stderr += chunk.toString();
    },
    ...extra,
  });
  return { ...r, stdout, stderr };
}

async function layerPaths(r: RunResult): Promise<string[]> {
  if (!r.layer) return [];
  const idx = await indexLayer(chain.store, r.layer.digest);
  return idx.entries.map((e) => (e.type === 'whiteout' ? `wh:${e.path}` : e.path)).sort();
}

function assertNothingLeft(): void {
  assert.equal(mountPoints().filter((m) => m.startsWith(cacheDir)), [], 'no mount below the cache dir');
  const steps = fs.existsSync(runcStepsDir(cacheDir)) ? fs.readdirSync(runcStepsDir(cacheDir)) : [];
  assert.equal(steps, [], 'no step temp dir');
}

test('tmpfs at a target the image lacks: a tmpfs in the step, neither its files nor the target in the layer', async () => {
  const r = await runStep('grep " /cache/tmp tmpfs " /proc/mounts && echo data > /cache/tmp/f && cat /cache/tmp/f && echo kept > /kept', [
    { type: 'tmpfs', target: '/cache/tmp' },
  ]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /data\n$/);
  assert.equal(await layerPaths(r), ['/kept']);
  assertNothingLeft();
});

test('tmpfs over a directory of the image (/tmp) with size: writes stay in the tmpfs, size applied', async () => {
  const r = await runStep('grep " /tmp tmpfs " /proc/mounts; echo x > /tmp/x', [{ type: 'tmpfs', target: '/tmp', size: 1024 * 1024 }]);
  assert.is(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /size=1024k/);
  assert.is(r.layer, undefined, 'nothing changed in the image');
});

test('tmpfs target relative to the WORKDIR; an empty target is RUN_MOUNT at the RUN line', async () => {
  const r = await runStep('grep " /work/t tmpfs " /proc/mounts >/dev/null', [{ type: 'tmpfs', target: 't' }], {
    process: { args: ['/bin/sh', '-c', 'grep " /work/t tmpfs " /proc/mounts >/dev/null'], env: [`PATH=${BUSYBOX_PATH}`], cwd: '/work', user: '' },
  });
  assert.is(r.exitCode, 0, r.stderr);
  try {
    await runStep('true', [{ type: 'tmpfs', target: '' }]);
    assert.unreachable('should have failed');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'RUN_MOUNT');
    assert.equal((e as OcistackError).location, { file: 'Dockerfile', line: 5 });
  }
  assertNothingLeft();
});

test('a type not implemented yet (ssh) is still RUN_MOUNT_UNSUPPORTED', async () => {
  try {
    await runStep('true', [{ type: 'ssh', target: '/run/ssh' }]);
    assert.unreachable('should have failed');
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.is((e as OcistackError).code, 'RUN_MOUNT_UNSUPPORTED');
  }
  assertNothingLeft();
});

test.run();
