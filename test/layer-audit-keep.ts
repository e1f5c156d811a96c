/**
 * Test-only preload (`node --import`) for the layer audit: test files remove
 * their temp dirs (after hooks, removeTempDir, exit handlers) before
 * scripts/test.sh could look at the layers in them. When
 * OCISTACK_LAYER_AUDIT names a directory, this module keeps every blob of
 * every blob store under a directory that is about to be removed recursively
 * (fs.rmSync, fs.rm, fs.promises.rm), as a hard link `<audit>/<hex>` (blobs
 * are content-addressed, so one name is one content), and at the exit of a
 * test process it keeps what is left under $OCISTACK_TEST_TMP. The audit
 * (test/layer-audit.ts) then extracts each with GNU tar.
 *
 * A test that writes layers which cannot extract on their own on purpose (a
 * hard link into a lower layer, a truncated blob) marks its store with
 * {@link excludeFromLayerAudit}; nothing else is exempt.
 *
 * Only builtins here, and nothing may throw: a failing preload would break
 * every node process the tests start.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';

/** Directories never searched for blob stores (big, and never hold ours). */
const SKIP = new Set(['node_modules', '.git', 'rootfs', 'proc', 'sys']);
const MAX_DEPTH = 10;
/** A file of this name in a blob store's root keeps its blobs out of the audit. */
export const NO_AUDIT_MARKER = '.no-layer-audit';

/** Keep the blobs of the store at `storeRoot` out of the layer audit (deliberately partial or broken layers). */
export function excludeFromLayerAudit(storeRoot: string): void {
  fs.mkdirSync(storeRoot, { recursive: true });
  fs.writeFileSync(path.join(storeRoot, NO_AUDIT_MARKER), 'this store holds layers that do not extract on their own on purpose\n');
}

/**
 * Hard-link (or copy) each `blobs/sha256/<hex>` file below `dir` into `into`.
 * Returns how many new blobs were kept.
 */
export function keepBlobs(dir: string, into: string): number {
  let kept = 0;
  const visit = (d: string, depth: number): void => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of names) {
      if (!e.isDirectory() || SKIP.has(e.name)) continue;
      const sub = path.join(d, e.name);
      if (e.name === 'sha256' && path.basename(d) === 'blobs') kept += keepStore(sub, into);
      else if (depth < MAX_DEPTH) visit(sub, depth + 1);
    }
  };
  visit(dir, 0);
  return kept;
}

function keepStore(sha: string, into: string): number {
  let kept = 0;
  if (fs.existsSync(path.join(sha, '..', '..', NO_AUDIT_MARKER))) return 0;
  let names: string[];
  try {
    names = fs.readdirSync(sha);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!/^[a-f0-9]{64}$/.test(name)) continue;
    const dest = path.join(into, name);
    if (fs.existsSync(dest)) continue;
    const src = path.join(sha, name);
    try {
      fs.mkdirSync(into, { recursive: true });
      try {
        fs.linkSync(src, dest);
      } catch {
        fs.copyFileSync(src, dest);
      }
      kept++;
    } catch {
      // a blob being removed by someone else, or not a regular file: nothing to audit
    }
  }
  return kept;
}

function keepBefore(target: unknown, options: unknown, into: string): void {
  try {
    if (typeof target !== 'string' && !(target instanceof URL)) return;
    if (!options || typeof options !== 'object' || !(options as { recursive?: boolean }).recursive) return;
    const dir = target instanceof URL ? target.pathname : target;
    if (fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) keepBlobs(dir, into);
  } catch {
    // best effort: never change what the removal does
  }
}

/** Patch the recursive removals of node:fs (and, through syncBuiltinESMExports, of ESM imports of it). */
function install(into: string): void {
  const rmSync = fs.rmSync;
  const rm = fs.rm;
  const rmPromise = fs.promises.rm;
  fs.rmSync = function (target: fs.PathLike, options?: fs.RmOptions): void {
    keepBefore(target, options, into);
    return rmSync(target, options);
  };
  fs.rm = function (target: fs.PathLike, ...rest: unknown[]): void {
    keepBefore(target, typeof rest[0] === 'object' ? rest[0] : undefined, into);
    return (rm as (...a: unknown[]) => void)(target, ...rest);
  } as typeof fs.rm;
  fs.promises.rm = function (target: fs.PathLike, options?: fs.RmOptions): Promise<void> {
    keepBefore(target, options, into);
    return rmPromise(target, options);
  };
  syncBuiltinESMExports();
  // A test file's process keeps what is still in its temp dir when it ends.
  const testTmp = process.env.OCISTACK_TEST_TMP;
  if (testTmp && /\.test\.js$/.test(process.argv[1] ?? '')) {
    process.on('exit', () => {
      try {
        keepBlobs(testTmp, into);
      } catch {
        // best effort
      }
    });
  }
}

const auditDir = process.env.OCISTACK_LAYER_AUDIT;
if (auditDir && !(globalThis as { __ocistackLayerAudit?: boolean }).__ocistackLayerAudit) {
  (globalThis as { __ocistackLayerAudit?: boolean }).__ocistackLayerAudit = true;
  install(auditDir);
}
