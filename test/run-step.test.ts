/**
 * The engine side of RUN (issue 9) with a real, small executor written in
 * this file: it implements the Executor contract, reads the chain it is
 * given from the store (so the chain must be the stage's real layers),
 * prints output and writes its change with writeLayer into chain.store.
 * Checked: the RunRequest the engine builds (shell/exec/heredoc argv, SHELL,
 * env with ARGs, cwd, user, network, mounts, chain), the history BuildKit
 * writes for RUN, empty_layer for no change, RUN_FAILED with the line, exit
 * code and last output lines and nothing written, abort reaching the
 * executor, --security=insecure refused unless allowed. The images are
 * read back with skopeo.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { build } from '../lib/engine/build.js';
import { abortError } from '../lib/abort.js';
import { OcistackError } from '../lib/errors.js';
import { BlobStore } from '../lib/image/store.js';
import { listLocalImages } from '../lib/image/local-images.js';
import { openImageFs, writeLayer } from '../lib/layer/index.js';
import type { Executor, RunRequest, RunResult } from '../lib/executor/types.js';
import type { LayerEntry } from '../lib/layer/types.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import { inspectOciLayout } from './helpers/images.js';
import { makeTempDir } from './helpers/tools.js';

interface Behaviour {
  /** Output chunks to send (stream, text), split oddly on purpose. */
  output?: [('stdout' | 'stderr'), string][];
  exitCode?: number;
  /** Write /ran-N with the argv (default true). */
  change?: boolean;
  /** The change to write instead of /ran-N. */
  entries?: LayerEntry[];
  /** Wait for the abort signal before answering. */
  waitForAbort?: () => void;
}

/** An executor that records what it was asked and what it saw in the chain. */
function recordingExecutor(behave: (req: RunRequest, n: number) => Behaviour = () => ({})) {
  const requests: RunRequest[] = [];
  const chainFiles: string[][] = [];
  const exec: Executor = {
    name: 'test',
    async run(req: RunRequest): Promise<RunResult> {
      const n = requests.push(req);
      const b = behave(req, n);
      // The chain is real: every layer is in the store and readable.
      const fs = await openImageFs(req.chain.store, req.chain.layers.map((l) => l.digest));
      chainFiles.push(['/base.txt', '/app', '/ran-1'].filter((p) => fs.stat(p) !== undefined));
      for (const [stream, text] of b.output ?? []) req.onOutput?.(stream, Buffer.from(text));
      if (b.waitForAbort) {
        await new Promise<void>((resolve) => {
          req.signal!.addEventListener('abort', () => resolve(), { once: true });
          b.waitForAbort!();
        });
        throw abortError(req.signal);
      }
      const exitCode = b.exitCode ?? 0;
      if (exitCode !== 0 || b.change === false) return { exitCode };
      const body = Buffer.from(req.process.args.join('\0'));
      const layer = await writeLayer(
        b.entries ?? [{ path: `/ran-${n}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: body.length, content: () => Readable.from([body]) }],
        { store: req.chain.store, sourceDateEpoch: req.sourceDateEpoch },
      );
      return { exitCode: 0, layer };
    },
  };
  return { exec, requests, chainFiles };
}

function context(dockerfile: string): string {
  const ctx = makeTempDir('run-step-');
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  writeFileSync(join(ctx, 'base.txt'), 'base\n');
  writeFileSync(join(ctx, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  writeFileSync(join(ctx, 'group'), 'root:x:0:\napp:x:1000:\n');
  return ctx;
}

async function expectError(p: Promise<unknown>): Promise<OcistackError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, OcistackError, String(e));
    return e as OcistackError;
  }
  throw new Error('expected the build to fail');
}

test('shell, exec and SHELL forms, env with ARGs, cwd, user, network, chain; BuildKit history', async () => {
  const ctx = context([
    'FROM scratch',
    'COPY base.txt /base.txt',
    'COPY passwd group /etc/',
    'ENV E=env',
    'ARG A=1',
    'ARG B',
    'WORKDIR /app',
    'USER app',
    'RUN echo "$A" > out',
    'RUN ["/bin/echo", "exec", "$A"]',
    'SHELL ["/bin/bash", "-eu", "-c"]',
    'RUN --network=none --mount=type=cache,target=/root/.cache,id=c1,sharing=locked echo bash',
    '',
  ].join('\n'));
  const { exec, requests, chainFiles } = recordingExecutor();
  const out = join(ctx, 'layout');
  const cache = makeTempDir('run-step-cache-');
  const res = await build({ context: ctx, executor: exec, buildArgs: { B: '2' }, tags: ['run:1'], output: { type: 'oci', dest: out }, cacheDir: cache, sourceDateEpoch: 1700000000 });

  assert.is(requests.length, 3);
  const [r1, r2, r3] = requests as [RunRequest, RunRequest, RunRequest];
  assert.equal(r1.process.args, ['/bin/sh', '-c', 'echo "$A" > out']);
  assert.equal(r2.process.args, ['/bin/echo', 'exec', '$A'], 'exec form as written, no expansion');
  assert.equal(r3.process.args, ['/bin/bash', '-eu', '-c', 'echo bash'], 'SHELL honoured');
  for (const r of requests) {
    assert.ok(r.process.env.includes('A=1') && r.process.env.includes('B=2') && r.process.env.includes('E=env'), r.process.env.join(' '));
    assert.is(r.process.cwd, '/app');
    assert.is(r.process.user, 'app');
    assert.is(r.cacheDir, cache);
    assert.is(r.sourceDateEpoch, 1700000000);
    assert.is(r.security, 'sandbox');
    assert.is(r.location.line, requests.indexOf(r) === 0 ? 9 : requests.indexOf(r) === 1 ? 10 : 12);
  }
  assert.is(r1.network, 'default');
  assert.is(r3.network, 'none');
  assert.equal(r3.mounts, [{ type: 'cache', target: '/root/.cache', readonly: false, id: 'c1', sharing: 'locked' }]);
  assert.equal(r1.mounts, []);
  // The chain is the stage's layers: base, /etc, /app (WORKDIR) for the first RUN; plus its layer for the second.
  assert.is(r1.chain.layers.length, 3);
  assert.is(r1.chain.diffIds.length, 3);
  assert.is(r2.chain.layers.length, 4);
  assert.equal(chainFiles[0], ['/base.txt', '/app']);
  assert.equal(chainFiles[1], ['/base.txt', '/app', '/ran-1']);
  assert.equal(r2.chain.layers.slice(0, 3), r1.chain.layers);

  const img = await inspectOciLayout(out, '1');
  assert.is(img.manifest.layers.length, 6);
  assert.equal(img.manifest.layers.map((l: { digest: string }) => l.digest), res.layers.map((l) => l.digest));
  assert.equal(img.config.rootfs.diff_ids.slice(0, 4), r2.chain.diffIds);
  const runs = img.config.history.filter((h: { created_by: string }) => h.created_by.startsWith('RUN '));
  assert.equal(runs.map((h: { created_by: string }) => h.created_by), [
    'RUN |2 A=1 B=2 /bin/sh -c echo "$A" > out # buildkit',
    'RUN |2 A=1 B=2 /bin/echo exec $A # buildkit',
    'RUN |2 A=1 B=2 /bin/bash -eu -c echo bash # buildkit',
  ]);
  for (const h of runs) {
    assert.is(h.comment, 'buildkit.dockerfile.v0');
    assert.not.ok(h.empty_layer);
  }
  // ARG values reach the RUN's env and BuildKit's `|N` history text only, never the image's config.
  assert.not.ok(img.config.config.Env.some((e: string) => /^(A|B)=/.test(e)), img.config.config.Env.join(' '));
  assert.ok(img.config.config.Env.includes('E=env'));
  const withArg = img.config.history.filter((h: { created_by: string }) => h.created_by.includes('B=2')).map((h: { created_by: string }) => h.created_by.split(' ')[0]);
  assert.equal(withArg, ['ARG', 'RUN', 'RUN', 'RUN'], 'BuildKit records the build-arg in ARG B=2 and the RUN prefixes only');
});

test('heredoc RUNs: the body as the script, #! as /dev/pipes/NAME, other heredocs to the shell', async () => {
  const ctx = context([
    'FROM scratch',
    'RUN <<EOF',
    'echo one',
    'echo two',
    'EOF',
    'RUN <<EOT',
    '#!/bin/sh',
    'echo script',
    'EOT',
    'RUN cat <<EOF > /x',
    'hello',
    'EOF',
    '',
  ].join('\n'));
  const { exec, requests } = recordingExecutor();
  const out = join(ctx, 'layout');
  await build({ context: ctx, executor: exec, output: { type: 'oci', dest: out }, cacheDir: makeTempDir('run-step-cache-') });
  assert.equal(requests.map((r) => r.process.args), [
    ['/bin/sh', '-c', 'echo one\necho two\n'],
    ['/bin/sh', '-c', '/dev/pipes/EOT'],
    ['/bin/sh', '-c', 'cat <<EOF > /x\nhello\nEOF'],
  ]);
  assert.not.ok(requests[0]!.inlineFiles);
  assert.equal(requests[1]!.inlineFiles, [{ path: '/dev/pipes/EOT', content: '#!/bin/sh\necho script\n', mode: 0o755 }]);
  const img = await inspectOciLayout(out);
  assert.equal(img.config.history.map((h: { created_by: string }) => h.created_by), [
    'RUN /bin/sh -c echo one\necho two\n # buildkit',
    'RUN /bin/sh -c /dev/pipes/EOT # buildkit',
    'RUN /bin/sh -c cat <<EOF > /x\nhello\nEOF # buildkit',
  ]);
});

test('a RUN that changes nothing: no layer, an empty_layer history entry', async () => {
  const ctx = context('FROM scratch\nCOPY base.txt /\nRUN true\n');
  const { exec } = recordingExecutor(() => ({ change: false }));
  const out = join(ctx, 'layout');
  await build({ context: ctx, executor: exec, output: { type: 'oci', dest: out }, cacheDir: makeTempDir('run-step-cache-') });
  const img = await inspectOciLayout(out);
  assert.is(img.manifest.layers.length, 1);
  assert.is(img.config.rootfs.diff_ids.length, 1);
  const last = img.config.history.at(-1);
  assert.is(last.created_by, 'RUN /bin/sh -c true # buildkit');
  assert.is(last.empty_layer, true);
});

test('RUN_FAILED: line, command, exit code and the last 10 lines; output events; nothing tagged or written', async () => {
  const ctx = context('FROM scratch\nCOPY base.txt /\n\nRUN make all\nRUN echo never\n');
  const lines = Array.from({ length: 15 }, (_, i) => `line ${i + 1}`);
  // Chunks that cut lines in two (each stream keeps its own partial line), both streams, a last line without newline.
  const text = lines.join('\n');
  const cut = text.indexOf('line 11');
  const output: [('stdout' | 'stderr'), string][] = [['stdout', text.slice(0, 20)], ['stdout', text.slice(20, cut)], ['stderr', text.slice(cut, cut + 3)], ['stderr', text.slice(cut + 3)]];
  const { exec, requests } = recordingExecutor(() => ({ output, exitCode: 3 }));
  const out = join(ctx, 'layout');
  const cache = makeTempDir('run-step-cache-');
  const events: ProgressEvent[] = [];
  const e = await expectError(build({ context: ctx, executor: exec, tags: ['failed:1'], output: { type: 'oci', dest: out }, cacheDir: cache, onProgress: (ev) => events.push(ev) }));
  assert.is(e.code, 'RUN_FAILED');
  assert.is(e.location?.line, 4);
  assert.match(e.message, '/bin/sh -c make all');
  assert.match(e.message, 'exit code 3');
  assert.ok(e.message.includes('line 6\n') && e.message.includes('line 15'), e.message);
  assert.not.ok(e.message.includes('line 5\n'), 'only the last 10 lines');
  assert.is(requests.length, 1, 'the build stopped');
  assert.not.ok(existsSync(out), 'no OCI layout written');
  assert.equal(await listLocalImages(new BlobStore(cache)), [], 'nothing tagged');
  const got = events.filter((x): x is Extract<ProgressEvent, { type: 'output' }> => x.type === 'output');
  assert.equal(got.map((x) => x.line).join('\n'), text, 'every line once, partial lines joined and flushed');
  assert.ok(got.every((x) => x.id === got[0]!.id && /^#\d+$/.test(x.id)));
  const step = events.find((x) => x.type === 'step' && x.status === 'start' && x.name.includes('RUN make all'));
  assert.is(step && step.type === 'step' ? step.id : undefined, got[0]!.id, 'output carries the RUN step id');
});

test('abort during a RUN reaches the executor; the build fails ABORTED and writes nothing', async () => {
  const ctx = context('FROM scratch\nCOPY base.txt /\nRUN sleep 1000\n');
  const ac = new AbortController();
  let seen: AbortSignal | undefined;
  const { exec } = recordingExecutor((req) => ({ waitForAbort: () => { seen = req.signal; ac.abort('test abort'); } }));
  const out = join(ctx, 'layout');
  const cache = makeTempDir('run-step-cache-');
  const e = await expectError(build({ context: ctx, executor: exec, tags: ['aborted:1'], output: { type: 'oci', dest: out }, cacheDir: cache, signal: ac.signal }));
  assert.is(e.code, 'ABORTED');
  assert.ok(seen?.aborted, 'the executor got the build signal');
  assert.not.ok(existsSync(out));
  assert.equal(await listLocalImages(new BlobStore(cache)), []);
});

test('RUN --security=insecure is refused unless allowed', async () => {
  const ctx = context('FROM scratch\nRUN --security=insecure mount -t tmpfs none /mnt\n');
  const { exec, requests } = recordingExecutor();
  const out = join(ctx, 'layout');
  const e = await expectError(build({ context: ctx, executor: exec, output: { type: 'oci', dest: out }, cacheDir: makeTempDir('run-step-cache-') }));
  assert.is(e.code, 'RUN_INSECURE');
  assert.is(e.location?.line, 2);
  assert.match(e.hint ?? '', '--allow security.insecure');
  assert.is(requests.length, 0, 'the executor was never called');
  assert.not.ok(existsSync(out));

  await build({ context: ctx, executor: exec, allowInsecure: true, output: { type: 'oci', dest: out }, cacheDir: makeTempDir('run-step-cache-') });
  assert.is(requests.length, 1);
  assert.is(requests[0]!.security, 'insecure');
});

test('a RUN that removed the WORKDIR: the next RUN gets it back first (the executor is promised it exists)', async () => {
  const ctx = context('FROM scratch\nWORKDIR /srv/app\nRUN rm -rf /srv/app\nRUN pwd\n');
  const whiteout = { path: '/srv/app', type: 'whiteout' as const, mode: 0, uid: 0, gid: 0, mtime: 0 };
  const { exec, requests } = recordingExecutor((_req, n) => (n === 1 ? { entries: [whiteout] } : { change: false }));
  const out = join(ctx, 'layout');
  await build({ context: ctx, executor: exec, output: { type: 'oci', dest: out }, cacheDir: makeTempDir('run-step-cache-') });
  const at = async (r: RunRequest) => (await openImageFs(r.chain.store, r.chain.layers.map((l) => l.digest))).stat('/srv/app')?.type;
  assert.is(await at(requests[0]!), 'dir');
  assert.is(requests[1]!.process.cwd, '/srv/app');
  assert.is(await at(requests[1]!), 'dir', 'recreated before the second RUN');
  const img = await inspectOciLayout(out);
  assert.equal(img.config.history.map((h: { created_by: string }) => h.created_by), [
    'WORKDIR /srv/app', 'RUN /bin/sh -c rm -rf /srv/app # buildkit', 'WORKDIR /srv/app', 'RUN /bin/sh -c pwd # buildkit',
  ]);
});
test.run();
