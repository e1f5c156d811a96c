/**
 * Child process of the development-loop benchmark: write one layer of a
 * context directory with ocistack's layer writer (lib/layer/write.ts), read
 * through the same context source and COPY file source a build uses
 * (stat walk, one read per small file), into a blob store. It is what
 * `COPY node_modules ./node_modules` costs without the rest of a build, so
 * it compares with `tar -c | gzip -6` and `tar -c | pigz -6` of the same
 * tree. Prints one JSON line: { ms, digest, size }.
 *
 *   node dist/bench/layer-write.js CONTEXT_DIR REL_DIR STORE_DIR
 */
import { openContext } from '../lib/context/context.js';
import { ContextSourceFs } from '../lib/engine/copy-source.js';
import { BlobStore } from '../lib/image/store.js';
import type { LayerEntry } from '../lib/layer/types.js';
import { writeLayer } from '../lib/layer/write.js';

async function* entries(src: ContextSourceFs, rel: string, dest: string): AsyncGenerator<LayerEntry> {
  const top = await src.lstat(rel);
  if (!top || top.type !== 'dir') throw new Error(`${rel} is not a directory in the context`);
  yield { path: dest, type: 'dir', mode: top.mode, uid: 0, gid: 0, mtime: top.mtime };
  for await (const e of src.walk(rel)) {
    const path = `${dest}/${e.rel.slice(rel.length + 1)}`;
    const st = e.stat;
    // COPY without --chown: owned by root, as in the image.
    if (st.type === 'dir') yield { path, type: 'dir', mode: st.mode, uid: 0, gid: 0, mtime: st.mtime };
    else if (st.type === 'symlink') yield { path, type: 'symlink', mode: st.mode, uid: 0, gid: 0, mtime: st.mtime, linkTarget: st.linkTarget! };
    else if (st.type === 'file') yield { path, type: 'file', mode: st.mode, uid: 0, gid: 0, mtime: st.mtime, size: st.size, content: src.content(e.rel, st) };
  }
}

async function main(): Promise<void> {
  const [dir, rel, storeDir] = process.argv.slice(2) as [string, string, string];
  if (!dir || !rel || !storeDir) throw new Error('usage: layer-write.js CONTEXT_DIR REL_DIR STORE_DIR');
  const t0 = performance.now();
  const src = new ContextSourceFs(await openContext({ dir }));
  const layer = await writeLayer(entries(src, rel, `/app/${rel}`), { store: new BlobStore(storeDir) });
  process.stdout.write(JSON.stringify({ ms: performance.now() - t0, digest: layer.digest, size: layer.size }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`layer-write failed: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
