/**
 * The generated "typical stack app" of the development-loop benchmark
 * (bench/devloop.ts): a node_modules-like tree (many small JS files, some
 * larger bundles, a few incompressible native binaries), app sources, config
 * and a Dockerfile on the busybox base. Deterministic (seeded), so every run
 * and machine builds the same bytes. At scale 1: about 8,500 files and
 * 100 MB; scale 10: about 85,000 files and 1 GB.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Prng, textBytes } from './build-workloads.js';

export interface DevloopApp {
  dir: string;
  scale: number;
  files: number;
  bytes: number;
  /** Bytes and files of node_modules alone (the layer-writing comparison's tree). */
  nodeModules: { files: number; bytes: number };
  /** Context-relative path of the source file the "one file changed" scenario edits. */
  changedFile: string;
  /** The original content of that file (written back before each cold build). */
  changedOriginal: string;
}

/** Files per scale unit: small JS, larger bundles, incompressible binaries, packages. */
const SMALL = 7_900;
const LARGE = 300;
const BINARIES = 5;
const PACKAGES = 250;
const SOURCES = 40;
const CONFIGS = 5;

/**
 * Text slices come from one seeded pool of source-like text at random
 * offsets: as compressible as textBytes() output, but fast enough to make a
 * gigabyte (gzip's 32 KiB window never sees that two files share the pool).
 */
class TextPool {
  private readonly pool: Buffer;
  constructor(private readonly rng: Prng, size = 8 << 20) {
    this.pool = textBytes(rng, size);
  }

  slice(size: number): Buffer {
    if (size >= this.pool.length) return textBytes(this.rng, size);
    const at = this.rng.int(this.pool.length - size);
    return this.pool.subarray(at, at + size);
  }
}

export function dockerfileFor(base: string): string {
  return [
    `FROM ${base}`,
    'WORKDIR /app',
    'COPY package.json ./',
    'COPY node_modules ./node_modules',
    'COPY src ./src',
    'COPY config ./config',
    'RUN echo built > /app/built',
    'ENV NODE_ENV=production PORT=3000',
    'EXPOSE 3000',
    'USER app',
    'CMD ["node", "src/index.js"]',
    '',
  ].join('\n');
}

/** Generate the app under `root/app-<scale>x` with `FROM base`. */
export function generateDevloopApp(root: string, base: string, scale: number, seed = 11): DevloopApp {
  const dir = join(root, `app-${scale}x`);
  const rng = new Prng(seed);
  const text = new TextPool(rng);
  let files = 0;
  let bytes = 0;
  const put = (rel: string, data: Buffer | string): void => {
    writeFileSync(join(dir, rel), data);
    files++;
    bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  };
  const made = new Set<string>();
  const mkdir = (rel: string): void => {
    if (made.has(rel)) return;
    mkdirSync(join(dir, rel), { recursive: true });
    made.add(rel);
  };

  const packages = Math.max(1, Math.round(PACKAGES * scale));
  const pkgDir = (i: number): string => `node_modules/${i % 7 === 0 ? `@scope${i % 13}/` : ''}pkg-${String(i).padStart(5, '0')}`;
  for (let p = 0; p < packages; p++) {
    const d = pkgDir(p);
    mkdir(d);
    put(`${d}/package.json`, JSON.stringify({ name: d.slice('node_modules/'.length), version: `1.${p % 10}.${p % 7}`, main: 'lib/index.js', license: 'MIT' }, null, 2) + '\n');
  }
  const small = Math.round(SMALL * scale);
  for (let i = 0; i < small; i++) {
    // Round-robin over packages, a few sub-directories each, as lib/ and esm/ trees are.
    const d = `${pkgDir(i % packages)}/${['lib', 'lib/internal', 'esm', 'lib/utils'][Math.floor(i / packages) % 4]}`;
    mkdir(d);
    put(`${d}/m${i}.${i % 9 === 0 ? 'd.ts' : 'js'}`, text.slice(256 + rng.int(8 * 1024 - 256)));
  }
  const large = Math.round(LARGE * scale);
  for (let i = 0; i < large; i++) {
    const d = `${pkgDir((i * 7) % packages)}/dist`;
    mkdir(d);
    put(`${d}/bundle${i}.js`, text.slice(64 * 1024 + rng.int(192 * 1024)));
  }
  const binaries = Math.max(1, Math.round(BINARIES * scale));
  for (let i = 0; i < binaries; i++) {
    const d = `${pkgDir((i * 31) % packages)}/build/Release`;
    mkdir(d);
    const b = Buffer.allocUnsafe(4 << 20);
    rng.fill(b);
    put(`${d}/addon${i}.node`, b);
  }
  const nodeModules = { files, bytes };

  for (const sub of ['src', 'src/routes', 'src/lib', 'src/models', 'config']) mkdir(sub);
  put('src/index.js', 'import { start } from "./lib/server.js";\nstart(Number(process.env.PORT ?? 3000));\n');
  for (let i = 1; i < SOURCES; i++) put(`src/${['routes', 'lib', 'models'][i % 3]}/file${i}.js`, text.slice(512 + rng.int(6 * 1024)));
  const changedFile = 'src/lib/server.js';
  const changedOriginal = 'export function start(port) {\n  console.log(`listening on ${port}`);\n}\n';
  put(changedFile, changedOriginal);
  for (let i = 0; i < CONFIGS; i++) put(`config/${['default', 'production', 'development', 'test', 'custom-environment-variables'][i]}.json`, JSON.stringify({ port: 3000 + i, log: { level: 'info' }, db: { pool: 5 + i } }, null, 2) + '\n');
  put('package.json', JSON.stringify({ name: 'devloop-app', version: '1.0.0', type: 'module', main: 'src/index.js', dependencies: { express: '^4.19.0' } }, null, 2) + '\n');
  writeFileSync(join(dir, 'Dockerfile'), dockerfileFor(base));
  return { dir, scale, files, bytes, nodeModules, changedFile, changedOriginal };
}
