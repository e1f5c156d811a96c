/**
 * Deterministic build contexts for the build benchmark: the same seed gives
 * the same bytes on every machine, so runs (and ocistack vs Buildah) compare
 * like with like.
 */
import { mkdirSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

/** Two xorshift32 generators added: fast, seedable, and random enough that gzip cannot shrink the output. */
export class Prng {
  private a: number;
  private b: number;
  constructor(seed: number) {
    this.a = (Math.imul(seed, 2654435761) >>> 0) || 1;
    this.b = ((seed ^ 0xdeadbeef) >>> 0) || 2;
  }

  private next(): number {
    let a = this.a;
    let b = this.b;
    a ^= a << 13;
    a ^= a >>> 17;
    a ^= a << 5;
    b ^= b << 7;
    b ^= b >>> 9;
    this.a = a >>> 0 || 1;
    this.b = b >>> 0 || 2;
    return (this.a + this.b) >>> 0;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }

  /** Fill `buf` with pseudo-random bytes (xorshift32 pair, 4 bytes a step). */
  fill(buf: Buffer): void {
    const words = new Uint32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4));
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < words.length; i++) {
      a ^= a << 13;
      a ^= a >>> 17;
      a ^= a << 5;
      b ^= b << 7;
      b ^= b >>> 9;
      words[i] = (a + b) >>> 0;
    }
    for (let i = words.length * 4; i < buf.length; i++) buf[i] = (a = (a * 1103515245 + 12345) >>> 0) >>> 24;
    this.a = a >>> 0 || 1;
    this.b = b >>> 0 || 2;
  }
}

const WORDS = (
  'the of and to in is it you that he was for on are with as his they be at one have this from or had by hot word but what some we can out ' +
  'other were all there when up use your how said an each she which do their time if will way about many then them write would like so these ' +
  'function const return import export class interface async await string number boolean undefined null true false require module'
).split(' ');

/** Text-like bytes (source code / logs): compresses about 3-4x with gzip. */
export function textBytes(rng: Prng, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  while (pos < size) {
    const w = rng.int(12) === 0 ? '\n' : WORDS[rng.int(WORDS.length)]! + ' ';
    pos += out.write(w, pos, 'latin1');
  }
  return out;
}

/** Write a big file in 1 MiB blocks; `kind` picks the content. */
function writeBigFile(file: string, size: number, kind: 'random' | 'text' | 'mixed', rng: Prng): void {
  const fd = openSync(file, 'w');
  try {
    const block = Buffer.allocUnsafe(1 << 20);
    let written = 0;
    let i = 0;
    while (written < size) {
      const n = Math.min(block.length, size - written);
      const random = kind === 'random' || (kind === 'mixed' && i % 2 === 0);
      const chunk = random ? (rng.fill(block), block.subarray(0, n)) : textBytes(rng, n);
      writeSync(fd, chunk);
      written += n;
      i++;
    }
  } finally {
    closeSync(fd);
  }
}

export interface Workload {
  /** Short id: small, big, app. */
  id: string;
  title: string;
  dir: string;
  /** Files in the context (excluding the Dockerfile). */
  files: number;
  bytes: number;
  /** Whether the Dockerfile pulls a base image (then a warm-cache run says something). */
  usesBase: boolean;
  /** RUN instructions in the Dockerfile: their times are reported per RUN, and ocistack also runs rootless. */
  runSteps?: number;
  /** Build and push to the bench registry (both tools) instead of writing an OCI layout. */
  push?: boolean;
}

/** (a) Many small files in nested dirs, one `COPY . /app`. */
export function smallFiles(root: string, count: number, seed = 1): Workload {
  const dir = join(root, 'small');
  const rng = new Prng(seed);
  let bytes = 0;
  const perDir = 100;
  for (let i = 0; i < count; i++) {
    const d = Math.floor(i / perDir);
    const sub = join(dir, `pkg${String(Math.floor(d / 10)).padStart(3, '0')}`, `mod${d % 10}`);
    if (i % perDir === 0) mkdirSync(sub, { recursive: true });
    const size = 1024 + rng.int(7 * 1024 + 1);
    // Half text, half binary: what a node_modules or vendor tree looks like to gzip.
    let data: Buffer;
    if (i % 2 === 0) data = textBytes(rng, size);
    else {
      data = Buffer.allocUnsafe(size);
      rng.fill(data);
    }
    writeFileSync(join(sub, `file${i}.${i % 2 === 0 ? 'js' : 'bin'}`), data);
    bytes += size;
  }
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /app\n');
  return { id: 'small', title: `${count} small files (1-8 KiB), COPY . /app`, dir, files: count, bytes, usesBase: false };
}

/** (b) A few big files: incompressible, text, and a 1 MiB-block mix; one COPY each. */
export function bigFiles(root: string, sizeMiB: number, seed = 2): Workload {
  const dir = join(root, 'big');
  mkdirSync(dir, { recursive: true });
  const rng = new Prng(seed);
  const size = sizeMiB * 1024 * 1024;
  const kinds = ['random', 'text', 'mixed'] as const;
  for (const k of kinds) writeBigFile(join(dir, `${k}.bin`), size, k, rng);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n' + kinds.map((k) => `COPY ${k}.bin /data/\n`).join(''));
  return { id: 'big', title: `3 x ${sizeMiB} MiB (random, text, mixed), 3 COPY`, dir, files: 3, bytes: 3 * size, usesBase: false };
}

/** (c) A typical app on the busybox base: 8 instructions, `count` source files. */
export function typicalApp(root: string, base: string, count: number, seed = 3, id = 'app', extra: string[] = []): Workload {
  const dir = join(root, id);
  const rng = new Prng(seed);
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const sub = join(dir, 'src', `area${Math.floor(i / 200)}`, `feature${Math.floor(i / 20) % 10}`);
    if (i % 20 === 0) mkdirSync(sub, { recursive: true });
    const size = 256 + rng.int(12 * 1024);
    writeFileSync(join(sub, `module${i}.js`), textBytes(rng, size));
    bytes += size;
  }
  const pkg = JSON.stringify({ name: 'bench-app', version: '1.0.0', main: 'src/index.js' }, null, 2) + '\n';
  writeFileSync(join(dir, 'package.json'), pkg);
  writeFileSync(join(dir, 'package-lock.json'), textBytes(rng, 64 * 1024));
  writeFileSync(join(dir, 'src', 'index.js'), 'console.log("hello");\n');
  bytes += pkg.length + 64 * 1024;
  writeFileSync(
    join(dir, 'Dockerfile'),
    [
      `FROM ${base}`,
      'ENV NODE_ENV=production',
      'WORKDIR /app',
      'COPY package.json package-lock.json ./',
      'COPY src ./src',
      ...extra,
      'LABEL org.opencontainers.image.title="bench-app"',
      'USER app',
      'CMD ["node", "src/index.js"]',
      '',
    ].join('\n'),
  );
  const title = `typical app on busybox: ${8 + extra.length} instructions, ${count + 3} files${extra.length ? `, ${extra.length} RUN` : ''}`;
  return { id, title, dir, files: count + 3, bytes, usesBase: true };
}

/**
 * (d) The typical app with one RUN (as root, before USER app): a short
 * script that lists the sources into a manifest and writes a small file,
 * what a build step of a real app does; built and pushed by both tools.
 */
export function typicalAppWithRun(root: string, base: string, count: number): Workload {
  const run = 'RUN mkdir -p /app/build && find src -name "*.js" | sort > /app/build/files.txt && wc -l < /app/build/files.txt > /app/build/count && echo ok > /app/build/status';
  return { ...typicalApp(root, base, count, 3, 'app-run', [run]), runSteps: 1, push: true };
}

/** (e) Ten consecutive small RUNs on a ~100 MiB base (bench/base-image.ts), each writing one file. */
export function tenRuns(root: string, base: string, baseMiB: number): Workload {
  const dir = join(root, 'runs10');
  mkdirSync(dir, { recursive: true });
  const runs = Array.from({ length: 10 }, (_, i) => `RUN echo step${i + 1} > /s${i + 1}`);
  writeFileSync(join(dir, 'Dockerfile'), [`FROM ${base}`, ...runs, ''].join('\n'));
  return { id: 'runs10', title: `10 consecutive small RUNs on a ${baseMiB} MiB base`, dir, files: 0, bytes: 0, usesBase: true, runSteps: 10 };
}

/** (f) One trivial RUN on busybox: warm, its snapshot is cached, so the RUN's own cost shows (reported per RUN). */
export function oneRun(root: string, base: string): Workload {
  const dir = join(root, 'run1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${base}\nRUN true\n`);
  return { id: 'run1', title: 'one trivial RUN (`RUN true`) on busybox', dir, files: 0, bytes: 0, usesBase: true, runSteps: 1 };
}
