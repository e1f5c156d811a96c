/**
 * The registry transport against servers that misbehave (test/helpers/
 * fault-servers.ts, all on 127.0.0.1, started here): every request has
 * connect/TLS/idle limits, retries and then a clear error naming the
 * registry and what stalled; an AbortSignal ends requests at once and is
 * never retried; small bodies (manifests, tokens, errors) are bounded also
 * when chunked. Every operation runs under a guard timer: without the fix
 * they hang, and the guard turns that into a failure.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from '../lib/engine/build.js';
import { OcistackError } from '../lib/errors.js';
import { BlobStore } from '../lib/image/store.js';
import { pullImage, pushImage, type RegistryOptions } from '../lib/registry/index.js';
import { guard, startSilentTcp, startSilentTls, startStallingRegistry, startUnconnectable, type FaultServer, type StallingRegistry } from './helpers/fault-servers.js';
import { testCerts } from './helpers/certs.js';
import { ocistack } from './helpers/cli.js';
import { parseArgs } from '../lib/cli/args.js';
import { parseDuration, registryFlagSpecs, registryOptionsFromFlags } from '../lib/cli/registry-flags.js';
import { makeRandomImage } from './helpers/random-image.js';
import { makeTempDir } from './helpers/tools.js';

const LIMIT = { connectMs: 300, tlsMs: 300, idleMs: 300 };
const RETRY = { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 };
const servers: FaultServer[] = [];

async function opts(extra: Partial<RegistryOptions> = {}): Promise<RegistryOptions> {
  return { caFile: (await testCerts()).caFile, env: {}, timeouts: LIMIT, retry: RETRY, ...extra };
}

function newStore(): BlobStore {
  return new BlobStore(join(makeTempDir('faults-store'), 'cache'));
}

/** The OcistackError an operation fails with (the guard's "hung" error fails the test). */
async function failure(p: Promise<unknown>, what: string): Promise<OcistackError> {
  try {
    await guard(p, 20_000, what);
  } catch (e) {
    if (!(e instanceof OcistackError)) throw e;
    return e;
  }
  assert.unreachable(`${what} succeeded`);
  throw new Error('unreachable');
}

let stalling: StallingRegistry;
async function stallingRegistry(): Promise<StallingRegistry> {
  if (!stalling) servers.push((stalling = await startStallingRegistry()));
  return stalling;
}

test('(a) TCP accepted, never answered (plain HTTP): "no answer from HOST within 300ms", after the retries', async () => {
  const srv = await startSilentTcp();
  servers.push(srv);
  const e = await failure(pullImage({ ref: `${srv.host}/x/y:1`, store: newStore(), registry: await opts({ plainHttpRegistries: [srv.host] }) }), 'pull');
  assert.is(e.code, 'REGISTRY_TIMEOUT');
  assert.is(e.registry, srv.host);
  assert.match(e.message, new RegExp(`no answer from ${srv.host.replace(/\./g, '\\.')} within 300ms`));
  assert.match(e.message, /3 tries/);
  assert.match(e.hint ?? '', /--timeout/);
  assert.is(srv.connections(), RETRY.attempts, 'each try a fresh connection');
});

test('(a) TCP accepted, TLS never started: "TLS handshake with HOST did not finish within 300ms"', async () => {
  const srv = await startSilentTcp();
  servers.push(srv);
  const e = await failure(pullImage({ ref: `${srv.host}/x/y:1`, store: newStore(), registry: await opts() }), 'pull');
  assert.is(e.code, 'REGISTRY_TIMEOUT');
  assert.match(e.message, new RegExp(`TLS handshake with ${srv.host.replace(/\./g, '\\.')} did not finish within 300ms`));
  assert.is(srv.connections(), RETRY.attempts);
});

test('connect never completes (accept queue full, SYNs dropped): "could not connect to HOST within 300ms"', async () => {
  const srv = await startUnconnectable();
  servers.push(srv);
  const e = await failure(pullImage({ ref: `${srv.host}/x/y:1`, store: newStore(), registry: await opts() }), 'pull');
  assert.is(e.code, 'REGISTRY_TIMEOUT');
  assert.is(e.registry, srv.host);
  assert.match(e.message, new RegExp(`could not connect to ${srv.host.replace(/\./g, '\\.')} within 300ms \\(3 tries\\)`));
});

test('(b) TLS handshake done, then silence: "no answer from HOST"', async () => {
  const srv = await startSilentTls();
  servers.push(srv);
  const e = await failure(pullImage({ ref: `${srv.host}/x/y:1`, store: newStore(), registry: await opts() }), 'pull');
  assert.is(e.code, 'REGISTRY_TIMEOUT');
  assert.is(e.registry, srv.host);
  assert.match(e.message, new RegExp(`no answer from ${srv.host.replace(/\./g, '\\.')} within 300ms`));
  assert.is(srv.connections(), RETRY.attempts, 'handshakes completed, one per try');
});

test('(c) blob body stops halfway, the Range resume stalls again: "download of blob ... stalled", no temp file left', async () => {
  const reg = await stallingRegistry();
  const store = newStore();
  const e = await failure(pullImage({ ref: reg.halfRef, store, registry: await opts() }), 'pull');
  assert.is(e.code, 'REGISTRY_TIMEOUT');
  assert.is(e.registry, reg.host);
  assert.match(e.message, new RegExp(`download of blob ${reg.layerDigest} from ${reg.host.replace(/\./g, '\\.')} stalled: no data for 300ms`));
  const layerGets = reg.requests().filter((r) => r.url.endsWith(reg.layerDigest));
  assert.is(layerGets.length, RETRY.attempts);
  assert.is(layerGets[0]!.range, undefined);
  assert.is(layerGets[1]!.range, `bytes=${128 * 1024}-`, 'resumed after the bytes that arrived');
  assert.is(layerGets[2]!.range, `bytes=${128 * 1024 + 1024}-`);
  assert.not.ok(await store.has(reg.layerDigest as `sha256:${string}`));
  assert.equal(readdirSync(join(store.root, 'tmp')), [], 'the partial blob is removed');
});

test('(c) an upload the registry never reads: "upload of blob ... stalled: no progress"', async () => {
  const reg = await stallingRegistry();
  const store = newStore();
  // Larger than what loopback socket buffers take in without the server reading.
  const img = await makeRandomImage(store, [24 * 1024 * 1024]);
  const layer = img.manifest.layers[0]!.digest;
  const e = await failure(pushImage({ store, manifest: img.descriptor, tags: [`${reg.uploadRepo}:1`], registry: await opts({ chunkSize: 64 * 1024 * 1024 }) }), 'push');
  assert.is(e.code, 'REGISTRY_TIMEOUT');
  assert.is(e.registry, reg.host);
  assert.match(e.message, new RegExp(`upload of blob ${layer} to ${reg.host.replace(/\./g, '\\.')} stalled: no progress for 300ms`));
});

test('an aborted signal ends a hanging request with ABORTED, and it is not retried', async () => {
  const srv = await startSilentTls();
  servers.push(srv);
  const ac = new AbortController();
  // Default limits (30 s): only the signal can end this within the guard.
  const p = pullImage({ ref: `${srv.host}/x/y:1`, store: newStore(), registry: { ...(await opts()), timeouts: undefined, signal: ac.signal } });
  setTimeout(() => ac.abort(), 300);
  const e = await failure(p, 'aborted pull');
  assert.is(e.code, 'ABORTED');
  assert.is(srv.connections(), 1, 'no retry after the abort');
  // Already aborted: nothing is sent at all.
  const before = srv.connections();
  const e2 = await failure(pullImage({ ref: `${srv.host}/x/y:1`, store: newStore(), registry: { ...(await opts()), signal: ac.signal } }), 'pull with an aborted signal');
  assert.is(e2.code, 'ABORTED');
  assert.is(srv.connections(), before);
});

test('an abort reason that is an OcistackError is what the operation rejects with', async () => {
  const srv = await startSilentTls();
  servers.push(srv);
  const ac = new AbortController();
  const reason = new OcistackError('build interrupted (SIGINT)', { code: 'ABORTED' });
  setTimeout(() => ac.abort(reason), 200);
  const e = await failure(pullImage({ ref: `${srv.host}/x/y:1`, store: newStore(), registry: { ...(await opts()), timeouts: undefined, signal: ac.signal } }), 'aborted pull');
  assert.is(e, reason);
});

test('an endless chunked manifest is cut at 4 MiB with an error naming the registry', async () => {
  const reg = await stallingRegistry();
  const e = await failure(pullImage({ ref: reg.endlessManifestRef, store: newStore(), registry: await opts({ timeouts: undefined }) }), 'pull');
  assert.is(e.code, 'RESPONSE_TOO_LARGE');
  assert.is(e.registry, reg.host);
  assert.match(e.message, /manifest of .*faults\/endless:1 from 127\.0\.0\.1:\d+ is larger than 4 MiB/);
});

test('an endless chunked token answer is cut at 1 MiB', async () => {
  const reg = await stallingRegistry();
  const e = await failure(pullImage({ ref: reg.tokenRef, store: newStore(), registry: await opts({ timeouts: undefined }) }), 'pull');
  assert.is(e.code, 'RESPONSE_TOO_LARGE');
  assert.match(e.message, /token answer from 127\.0\.0\.1:\d+ is larger than 1 MiB/);
});

test('an endless chunked error body does not hang the error: the 404 is reported', async () => {
  const reg = await stallingRegistry();
  const e = await failure(pullImage({ ref: reg.endlessErrorRef, store: newStore(), registry: await opts({ timeouts: undefined }) }), 'pull');
  assert.is(e.code, 'NOT_FOUND');
  assert.match(e.message, /HTTP 404/);
});

test('the CLI --timeout flag reaches the transport (ocistack pull --timeout 300ms against a silent TLS server)', async () => {
  const srv = await startSilentTls();
  servers.push(srv);
  const certs = await testCerts();
  const r = await guard(ocistack(['pull', '--progress', 'quiet', '--timeout', '300ms', '--ca-file', certs.caFile, `${srv.host}/x/y:1`], { env: { OCISTACK_CACHE_DIR: join(makeTempDir('faults-cache'), 'c') } }), 60_000, 'ocistack pull');
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`registry ${srv.host.replace(/\./g, '\\.')}: no answer from ${srv.host.replace(/\./g, '\\.')} within 300ms after the request \\(6 tries\\)`));
  assert.match(r.stderr, /hint: .*--timeout \(now 300ms\)/);
  const usage = await ocistack(['pull', '--timeout', 'soon', `${srv.host}/x/y:1`]);
  assert.is(usage.code, 2);
  assert.match(usage.stderr, /--timeout "soon" is not a duration/);
});

test('build({ registry: { timeouts } }) passes the limits to the base image pull', async () => {
  const srv = await startSilentTls();
  servers.push(srv);
  const ctx = makeTempDir('faults-ctx');
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${srv.host}/x/base:1\n`);
  const e = await failure(build({ context: ctx, cacheDir: join(makeTempDir('faults-cache'), 'c'), env: {}, registry: await opts() }), 'build');
  assert.is(e.code, 'REGISTRY_TIMEOUT');
  assert.is(e.registry, srv.host);
  assert.match(e.message, /no answer from .* within 300ms/);
});

test('--timeout durations; --plain-http and --tls-verify=false apply to the command-line registries only', async () => {
  assert.is(parseDuration('300ms', 'timeout'), 300);
  assert.is(parseDuration('30s', 'timeout'), 30_000);
  assert.is(parseDuration('1m30s', 'timeout'), 90_000);
  assert.is(parseDuration('2', 'timeout'), 2000);
  for (const bad of ['', 'soon', '10x', '0s', '5 s', 's']) {
    try {
      parseDuration(bad, 'timeout');
      assert.unreachable(bad);
    } catch (e) {
      assert.is((e as OcistackError).code, 'USAGE', bad);
    }
  }
  const io = { env: {}, cwd: '/', stdin: process.stdin, stdout: process.stdout, stderr: process.stderr } as unknown as Parameters<typeof registryOptionsFromFlags>[1]['io'];
  const parse = (argv: string[]) => parseArgs(argv, registryFlagSpecs, 'test');
  const o = await registryOptionsFromFlags(parse(['--plain-http', '--timeout', '5s']), { targets: ['reg.local:5000/a/b:1'], io });
  assert.equal(o.plainHttpRegistries, ['reg.local:5000']);
  assert.equal(o.timeouts, { connectMs: 5000, tlsMs: 5000, idleMs: 5000 });
  const v = await registryOptionsFromFlags(parse(['--tls-verify=false']), { targets: ['reg.local:5000/a/b:1'], io });
  assert.equal(v.insecureRegistries, ['reg.local:5000']);
  assert.equal(v.httpFallbackRegistries, ['reg.local:5000']);
  assert.is((await registryOptionsFromFlags(parse(['--tls-verify=true']), { targets: ['reg.local:5000/a/b:1'], io })).httpFallbackRegistries, undefined);
  try {
    await registryOptionsFromFlags(parse(['--plain-http']), { targets: [], io });
    assert.unreachable('--plain-http without a registry');
  } catch (e) {
    assert.is((e as OcistackError).exitCode, 2);
  }
});

test.after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

test.run();
