/**
 * The layer audit: every gzip-compressed tar blob the test suite left in a
 * directory (kept there by test/layer-audit-keep.ts) is listed and extracted
 * with GNU tar `--warning=all`; any output on stderr or a non-zero exit is a
 * failure. Run by scripts/test.sh after all test files:
 *
 *   node dist/test/layer-audit.js AUDIT_DIR
 *
 * prints one line per failing layer with GNU tar's words, how many layers it
 * checked, and uvu's totals (`Total:` / `Passed:`) so test.sh adds them up.
 * Exit code 1 when a layer failed.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';
import { looksLikeTar } from '../lib/layer/decompress.js';

export interface AuditFailure {
  blob: string;
  /** What GNU tar printed (or why the blob was refused). */
  output: string;
}

export interface AuditResult {
  /** Gzip tar blobs extracted. */
  checked: number;
  /** Blobs that are not gzip tars (configs, manifests, other compressions). */
  skipped: number;
  failures: AuditFailure[];
}

/** True when the file is gzip whose first 512 decompressed bytes are a tar header. */
export async function isGzipTar(file: string): Promise<boolean> {
  const fd = await fs.promises.open(file, 'r');
  try {
    const magic = Buffer.alloc(2);
    await fd.read(magic, 0, 2, 0);
    if (magic[0] !== 0x1f || magic[1] !== 0x8b) return false;
  } finally {
    await fd.close();
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let done = false;
    const finish = (v: boolean): void => {
      if (done) return;
      done = true;
      input.destroy();
      gunzip.destroy();
      resolve(v);
    };
    const input = fs.createReadStream(file);
    const gunzip = createGunzip();
    gunzip.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= 512) finish(looksLikeTar(Buffer.concat(chunks).subarray(0, 512)));
    });
    // A gzip that is broken before its first header is still meant as a layer: let tar judge it.
    gunzip.on('error', () => finish(true));
    gunzip.on('end', () => finish(got >= 512 && looksLikeTar(Buffer.concat(chunks).subarray(0, 512))));
    input.on('error', () => finish(false));
    input.pipe(gunzip);
  });
}

function tar(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => resolve({ code: -1, stderr: `cannot run tar: ${e.message}` }));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** List and extract one layer with GNU tar; undefined when it is clean, else what tar said. */
export async function auditLayer(blob: string, scratch: string): Promise<string | undefined> {
  const problems: string[] = [];
  const list = await tar(['--warning=all', '--numeric-owner', '-tvzf', blob]);
  if (list.code !== 0 || list.stderr) problems.push(`tar -tvzf (exit ${list.code}): ${list.stderr.trim()}`);
  const dir = await fs.promises.mkdtemp(path.join(scratch, 'x-'));
  try {
    const x = await tar(['--warning=all', '--numeric-owner', '-xzf', blob, '-C', dir]);
    if (x.code !== 0 || x.stderr) problems.push(`tar -xzf (exit ${x.code}): ${x.stderr.trim()}`);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
  return problems.length ? problems.join('\n') : undefined;
}

/** Audit every blob file directly in `dir` (names are digests), `jobs` at a time. */
export async function auditDir(dir: string, jobs = 2): Promise<AuditResult> {
  const result: AuditResult = { checked: 0, skipped: 0, failures: [] };
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isFile()).sort() : [];
  const scratch = fs.mkdtempSync(path.join(path.dirname(path.resolve(dir)), 'layer-audit-scratch-'));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const blob = path.join(dir, names[next++]!);
      if (!(await isGzipTar(blob))) {
        result.skipped++;
        continue;
      }
      result.checked++;
      const output = await auditLayer(blob, scratch);
      if (output !== undefined) result.failures.push({ blob, output });
    }
  };
  try {
    await Promise.all(Array.from({ length: jobs }, worker));
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  result.failures.sort((a, b) => (a.blob < b.blob ? -1 : 1));
  return result;
}

async function main(dir: string): Promise<number> {
  const r = await auditDir(dir);
  for (const f of r.failures) console.log(`FAIL layer ${path.basename(f.blob)} does not extract cleanly with GNU tar:\n${f.output.replace(/^/gm, '    ')}`);
  console.log(`layer audit: ${r.checked} layers extracted with GNU tar --warning=all, ${r.failures.length} with warnings or errors (${r.skipped} other blobs skipped)`);
  // uvu's summary format, which scripts/test.sh adds up: one test per layer.
  console.log(`\n  Total:     ${r.checked}\n  Passed:    ${r.checked - r.failures.length}\n  Skipped:   0\n`);
  return r.failures.length ? 1 : 0;
}

if (process.argv[1] && /layer-audit\.js$/.test(process.argv[1])) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node dist/test/layer-audit.js AUDIT_DIR');
    process.exit(2);
  }
  main(dir).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
