/**
 * Unique images for registry tests: layers of random bytes (so no registry
 * already has them and nothing compresses them away), written with node-tar
 * and gzip straight into a BlobStore, with a config and an OCI manifest.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, writeFileSync } from 'node:fs';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlibConstants } from 'node:zlib';
import * as tar from 'tar';
import { canonicalJson } from '../../lib/image/digest.js';
import type { BlobStore } from '../../lib/image/store.js';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type ImageManifest } from '../../lib/image/types.js';
import { makeTempDir } from './tools.js';

export interface RandomImage {
  manifest: ImageManifest;
  /** Descriptor of the manifest blob in the store. */
  descriptor: Descriptor;
  config: ImageConfig;
  /** Paths in the image and their sha256 (hex), one file per layer. */
  files: { path: string; sha256: string }[];
}

async function sha256File(file: string): Promise<{ digest: Digest; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(file)) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/**
 * Make an image with one layer per entry of `layerSizes` (bytes of random
 * content in `/data/layer<i>.bin`), stored in `store`. linux/amd64-like config
 * with the host architecture.
 */
export async function makeRandomImage(store: BlobStore, layerSizes: number[], opts: { arch?: string } = {}): Promise<RandomImage> {
  const work = makeTempDir('randimg');
  const layers: Descriptor[] = [];
  const diffIds: Digest[] = [];
  const files: RandomImage['files'] = [];
  try {
    for (const [i, size] of layerSizes.entries()) {
      const root = join(work, `l${i}`);
      mkdirSync(join(root, 'data'), { recursive: true });
      const name = `data/layer${i}.bin`;
      const h = createHash('sha256');
      const out = createWriteStream(join(root, name));
      for (let left = size; left > 0; ) {
        const n = Math.min(left, 1 << 20);
        const chunk = randomBytes(n);
        h.update(chunk);
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        left -= n;
      }
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      files.push({ path: `/${name}`, sha256: h.digest('hex') });
      const tarFile = join(work, `l${i}.tar`);
      await tar.create({ cwd: root, file: tarFile, portable: true, mtime: new Date(0) }, ['data']);
      diffIds.push((await sha256File(tarFile)).digest);
      const gz = join(work, `l${i}.tar.gz`);
      await pipeline(createReadStream(tarFile), createGzip({ level: zlibConstants.Z_BEST_SPEED }), createWriteStream(gz));
      const { digest, size: gzSize } = await sha256File(gz);
      await store.putStream(createReadStream(gz), digest, gzSize);
      layers.push({ mediaType: MediaType.OciLayerGzip, digest, size: gzSize });
      rmSync(root, { recursive: true, force: true });
      rmSync(tarFile, { force: true });
      rmSync(gz, { force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const arch = opts.arch ?? (process.arch === 'x64' ? 'amd64' : process.arch);
  const config: ImageConfig = {
    created: new Date().toISOString(),
    architecture: arch,
    os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin'], Labels: { 'ocistack.test.nonce': randomBytes(8).toString('hex') } },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layerSizes.map((_, i) => ({ created_by: `random layer ${i}` })),
  };
  const configBytes = canonicalJson(config);
  const c = await store.putBytes(configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: c.digest, size: c.size },
    layers,
  };
  const m = await store.putBytes(canonicalJson(manifest));
  return { manifest, descriptor: { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size }, config, files };
}

/** Write a small file (test fixtures). */
export function writeFixture(dir: string, name: string, content: string): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
