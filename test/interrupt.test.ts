/**
 * Interrupting `ocistack build --push` (the real bin, a real TLS
 * docker-registry behind a TCP proxy that slows every connection down) with
 * kill -INT and kill -9 while it pulls the base, while it writes a layer and
 * while it pushes. The phase is read from `--progress json` events on
 * stderr, never guessed with sleeps. After each interruption:
 *  - SIGINT: exit code 130 and no temp file, lock, staging dir, output or
 *    digest file left; SIGKILL: killed, and its leftovers are swept by the
 *    next run (checked after that run);
 *  - every file in the cache's blobs/sha256 is complete: its sha256 is its name;
 *  - the interrupted build's tag is not in the registry (skopeo inspect fails);
 * and at the end a build succeeds, with its tag, output and digest file.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import type { ProgressEvent } from '../lib/progress/events.js';
import { pushImage } from '../lib/registry/index.js';
import { BIN, REPO_ROOT } from './helpers/cli.js';
import { makeRandomImage } from './helpers/random-image.js';
import { skopeoInspectArgs, startRegistry, type TestRegistry } from './helpers/registry.js';
import { startSlowTcpProxy, type SlowTcpProxy } from './helpers/slow-tcp-proxy.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';

const MiB = 1024 * 1024;
let reg: TestRegistry;
let proxy: SlowTcpProxy;
let work: string;
let context: string;
let cache: string;

test.before(async () => {
  reg = await startRegistry({ auth: 'none' });
  // 3 MiB/s per connection: a pull of the 12 MiB base and a push of the 2 x 12 MiB layers take seconds.
  proxy = await startSlowTcpProxy(Number(reg.host.split(':')[1]), 3 * MiB);
  const baseStore = new BlobStore(makeTempDir('interrupt-base-'));
  const base = await makeRandomImage(baseStore, [4 * MiB, 4 * MiB, 4 * MiB]);
  await pushImage({ store: baseStore, manifest: base.descriptor, tags: [`${reg.host}/library/slowbase:1`], registry: { caFile: reg.caFile, env: {} } });
  work = makeTempDir('interrupt-');
  context = join(work, 'ctx');
  cache = join(work, 'cache');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(context);
  writeFileSync(join(context, 'big1'), randomBytes(12 * MiB));
  writeFileSync(join(context, 'big2'), randomBytes(12 * MiB));
  writeFileSync(join(context, 'Dockerfile'), `FROM ${proxy.host}/library/slowbase:1\nCOPY big1 /big1\nCOPY big2 /big2\nCMD ["/big1"]\n`);
});

test.after(async () => {
  await proxy?.close();
  await reg?.stop();
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** Whether the signal was sent (the phase was reached before the build ended). */
  sent: boolean;
}

const out = () => join(work, 'out');
const digestFile = () => join(work, 'digest');

/**
 * Run the build; send `sig` at the first progress event `when` accepts
 * (and, with `andThen`, once that also holds: polled every 5 ms).
 */
function buildAndInterrupt(tag: string, when: ((e: ProgressEvent) => boolean) | undefined, sig: NodeJS.Signals, andThen?: () => boolean, twice = false): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [
      BIN, 'build', context, '-t', `${proxy.host}/giteaadmin/app:${tag}`, '--push', '--ca-file', reg.caFile,
      '--cache-dir', cache, '--output', `type=oci,dest=${out()}`, '--digest-file', digestFile(), '--progress', 'json',
      // Every build here must do its work, to be interrupted in it (an earlier build finished these steps).
      '--no-cache',
    ], { cwd: REPO_ROOT, env: { ...process.env, OCISTACK_CACHE_DIR: cache }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let partial = '';
    let sent = false;
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    let second = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      // The second signal once the first was handled (pending signals of one kind merge).
      if (twice && sent && !second && stderr.includes('again to quit at once')) {
        second = true;
        child.kill(sig);
      }
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (sent || !when || !line.startsWith('{')) continue;
        let e: ProgressEvent;
        try {
          e = JSON.parse(line) as ProgressEvent;
        } catch {
          continue;
        }
        if (when(e)) {
          sent = true;
          const fire = () => (andThen && !andThen() ? (child.exitCode === null ? setTimeout(fire, 5) : (sent = false)) : child.kill(sig));
          fire();
        }
      }
    });
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr, sent });
    });
  });
}

const duringPull = (e: ProgressEvent) => e.type === 'blob' && e.action === 'pull' && e.current > 0 && !e.done;
const duringLayer = (e: ProgressEvent) => e.type === 'step' && e.status === 'start' && /COPY big1/.test(e.name);
/** The layer writer's temp file exists: the layer is being written now (there is no progress event for it). */
const layerBeingWritten = () => listOr(join(cache, 'tmp')).some((n) => n.startsWith('layer-'));
const duringPush = (e: ProgressEvent) => e.type === 'blob' && e.action === 'push' && e.current > 0 && !e.done;

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Every blob in the cache is complete and what its name says. */
async function assertBlobsVerified(): Promise<void> {
  const dir = join(cache, 'blobs', 'sha256');
  const names = existsSync(dir) ? readdirSync(dir) : [];
  for (const n of names) assert.is(await sha256Of(join(dir, n)), n, `cache blob ${n} is partial or wrong`);
}

function listOr(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** Temp files anywhere ocistack writes them for this build. */
function leftovers(): string[] {
  return [
    ...listOr(join(cache, 'tmp')).map((n) => `cache/tmp/${n}`),
    ...listOr(join(cache, 'index', 'sha256')).filter((n) => n.includes('.tmp')).map((n) => `cache/index/${n}`),
    ...listOr(cache).filter((n) => n.includes('.tmp') || n.startsWith('index.json.lock')).map((n) => `cache/${n}`),
    ...listOr(work).filter((n) => n.startsWith('.out') || n.startsWith('.digest')).map((n) => n),
  ];
}

async function assertNotPushed(tag: string): Promise<void> {
  const r = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${reg.host}/giteaadmin/app:${tag}`]);
  assert.is.not(r.code, 0, `tag ${tag} of an interrupted build was pushed`);
}

/**
 * No digest file (written only after success) and no half-written output:
 * before the push the output does not exist yet; during the push it may
 * (the build writes outputs before pushing), then complete.
 */
async function assertNoPartialOutput(phase: 'pull' | 'layer' | 'push'): Promise<void> {
  assert.not.ok(existsSync(digestFile()), 'a digest file was written by an interrupted build');
  if (phase !== 'push' || !existsSync(out())) {
    assert.not.ok(existsSync(out()), 'an output layout was written before the build finished');
    return;
  }
  const index = JSON.parse(readFileSync(join(out(), 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.ok(index.manifests.length > 0);
  for (const n of readdirSync(join(out(), 'blobs', 'sha256'))) assert.is(await sha256Of(join(out(), 'blobs', 'sha256', n)), n, `output blob ${n} is partial`);
}

/** What the previous kill -9 left behind; the next run must sweep it. */
let killedLeftovers: string[] = [];

async function afterInt(r: Run, tag: string, phase: 'pull' | 'layer' | 'push'): Promise<void> {
  assert.ok(r.sent, `the build ended before the phase was reached:\n${r.stderr.slice(-2000)}`);
  assert.is(r.code, 130, `exit code after SIGINT:\n${r.stderr.slice(-2000)}`);
  assert.match(r.stderr, 'interrupted');
  assert.equal(leftovers(), [], 'temp files, locks or staging left after SIGINT (or not swept after the kill -9 before)');
  for (const n of killedLeftovers) assert.not.ok(leftovers().includes(n), `${n} left by kill -9 was not swept`);
  killedLeftovers = [];
  await assertBlobsVerified();
  await assertNoPartialOutput(phase);
  await assertNotPushed(tag);
}

async function afterKill(r: Run, tag: string, phase: 'pull' | 'layer' | 'push', expectLeftovers: boolean): Promise<void> {
  assert.ok(r.sent, `the build ended before the phase was reached:\n${r.stderr.slice(-2000)}`);
  assert.is(r.signal, 'SIGKILL');
  killedLeftovers = leftovers();
  if (expectLeftovers) assert.ok(killedLeftovers.length > 0, 'kill -9 mid-write left no temp file: the sweep would be untested');
  await assertBlobsVerified();
  await assertNoPartialOutput(phase);
  await assertNotPushed(tag);
}

test('kill -INT while pulling the base: exit 130, nothing partial left, no tag', async () => {
  await afterInt(await buildAndInterrupt('int-pull', duringPull, 'SIGINT'), 'int-pull', 'pull');
});

test('kill -9 while pulling the base: only verified blobs in the cache, no tag', async () => {
  await afterKill(await buildAndInterrupt('kill-pull', duringPull, 'SIGKILL'), 'kill-pull', 'pull', true);
});

test('kill -INT while writing a layer (the next run swept what kill -9 left)', async () => {
  await afterInt(await buildAndInterrupt('int-layer', duringLayer, 'SIGINT', layerBeingWritten), 'int-layer', 'layer');
});

test('kill -9 while writing a layer', async () => {
  await afterKill(await buildAndInterrupt('kill-layer', duringLayer, 'SIGKILL', layerBeingWritten), 'kill-layer', 'layer', true);
});

test('kill -INT while pushing: no tag, exit 130 (and kill -9 leftovers swept)', async () => {
  await afterInt(await buildAndInterrupt('int-push', duringPush, 'SIGINT'), 'int-push', 'push');
});

test('kill -9 while pushing', async () => {
  await afterKill(await buildAndInterrupt('kill-push', duringPush, 'SIGKILL'), 'kill-push', 'push', false);
});

test('SIGTERM exits 143 the same way', async () => {
  const r = await buildAndInterrupt('term-push', duringPush, 'SIGTERM');
  assert.ok(r.sent);
  assert.is(r.code, 143, r.stderr.slice(-2000));
  assert.equal(leftovers(), []);
  for (const n of killedLeftovers) assert.not.ok(leftovers().includes(n), `${n} left by kill -9 was not swept`);
  killedLeftovers = [];
  await assertBlobsVerified();
  await assertNoPartialOutput('push');
  await assertNotPushed('term-push');
});

test('a second SIGINT right after the first exits at once: 130, registered temp files removed', async () => {
  const r = await buildAndInterrupt('int-twice', duringLayer, 'SIGINT', layerBeingWritten, true);
  assert.ok(r.sent);
  assert.is(r.code, 130, r.stderr.slice(-2000));
  assert.match(r.stderr, 'SIGINT again: quitting now');
  assert.equal(leftovers(), []);
  await assertBlobsVerified();
  await assertNoPartialOutput('push'); // the layout of an earlier run (interrupted while pushing) may exist, whole
  await assertNotPushed('int-twice');
});

test('the next build succeeds: tag pushed, output and digest file written, cache clean', async () => {
  const r = await buildAndInterrupt('final', undefined, 'SIGINT');
  assert.is(r.code, 0, r.stderr.slice(-3000));
  const digest = readFileSync(digestFile(), 'utf8').trim();
  const inspect = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${reg.host}/giteaadmin/app:final`]);
  assert.is(inspect.code, 0, inspect.stderr);
  assert.is(`sha256:${createHash('sha256').update(inspect.stdout).digest('hex')}`, digest);
  assert.ok(existsSync(join(out(), 'index.json')));
  assert.equal(leftovers(), []);
  await assertBlobsVerified();
});

test.run();
