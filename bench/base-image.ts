/**
 * The ~100 MiB base image of the `runs10` build workload: the test busybox
 * image (test/helpers/images.ts) plus one layer of `files` deterministic
 * files under /opt/base (half text, half random bytes, 50 KiB each by
 * default), assembled with umoci and pushed with skopeo, so neither tool
 * under test made it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxLayout } from '../test/helpers/images.js';
import { skopeoArgs, type TestRegistry } from '../test/helpers/registry.js';
import { makeTempDir, removeTempDir, requireTool, runOk } from '../test/helpers/tools.js';
import { Prng, textBytes } from './build-workloads.js';

/** Push the base to `reg` as bench/base100:latest; returns its reference and size. */
export async function pushBigBase(reg: TestRegistry, totalMiB = 100, fileKiB = 50, seed = 4): Promise<{ ref: string; bytes: number }> {
  const umoci = requireTool('umoci');
  const skopeo = requireTool('skopeo');
  const src = await busyboxLayout();
  const work = makeTempDir('bench-base');
  try {
    const dir = join(work, 'layout');
    await runOk(skopeo, ['copy', '--quiet', `oci:${src.dir}:${src.tag}`, `oci:${dir}:base`]);
    const bundle = join(work, 'bundle');
    await runOk(umoci, ['unpack', '--image', `${dir}:base`, bundle]);
    const rng = new Prng(seed);
    const files = Math.round((totalMiB * 1024) / fileKiB);
    let bytes = 0;
    for (let i = 0; i < files; i++) {
      const sub = join(bundle, 'rootfs', 'opt', 'base', `lib${Math.floor(i / 100)}`);
      if (i % 100 === 0) mkdirSync(sub, { recursive: true });
      const size = fileKiB * 1024;
      let data: Buffer;
      if (i % 2 === 0) data = textBytes(rng, size);
      else {
        data = Buffer.allocUnsafe(size);
        rng.fill(data);
      }
      writeFileSync(join(sub, `f${i}.${i % 2 === 0 ? 'txt' : 'bin'}`), data);
      bytes += size;
    }
    await runOk(umoci, ['repack', '--image', `${dir}:base`, bundle]);
    const ref = `${reg.host}/bench/base100:latest`;
    await runOk(skopeo, ['copy', '--quiet', ...skopeoArgs(reg, 'dest'), `oci:${dir}:base`, `docker://${ref}`]);
    return { ref, bytes };
  } finally {
    removeTempDir(work);
  }
}
