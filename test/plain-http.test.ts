/**
 * A plain-HTTP registry (the real docker-registry with `tls: false`) through
 * the bin: without a flag the error says the server answered plain HTTP and
 * names --plain-http (not a TLS verification failure); with --plain-http or
 * skopeo's --tls-verify=false push and pull work, and skopeo reads the image.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { writeOciLayout } from '../lib/image/layout.js';
import { BlobStore } from '../lib/image/store.js';
import { ocistack } from './helpers/cli.js';
import { makeRandomImage } from './helpers/random-image.js';
import { skopeoInspectArgs, withRegistry } from './helpers/registry.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';

async function layout(): Promise<{ dir: string; digest: string }> {
  const store = new BlobStore(join(makeTempDir('plain-store'), 'cache'));
  const img = await makeRandomImage(store, [300_000]);
  const dir = join(makeTempDir('plain-layout'), 'l');
  await writeOciLayout({ dir, store, manifests: [{ descriptor: img.descriptor, tag: 'src' }] });
  return { dir, digest: img.descriptor.digest };
}

const env = () => ({ OCISTACK_CACHE_DIR: join(makeTempDir('plain-cache'), 'c') });

test('push to a plain-HTTP registry without a flag: "the server answered plain HTTP", hint --plain-http, exit 1', async () => {
  const reg = await withRegistry('none', { tls: false });
  const { dir } = await layout();
  const r = await ocistack(['push', '--progress', 'quiet', `oci:${dir}:src`, `${reg.host}/giteaadmin/plain:1`], { env: env() });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`registry ${reg.host}: TLS connection to ${reg.host} failed: the server answered plain HTTP`));
  assert.match(r.stderr, /hint: .*--plain-http/);
  assert.not.match(r.stderr, /TLS verification of/);
});

test('--plain-http: push, then pull back the same digest; skopeo reads it', async () => {
  const reg = await withRegistry('none', { tls: false });
  const { dir, digest } = await layout();
  const ref = `${reg.host}/giteaadmin/plain:2`;
  const push = await ocistack(['push', '--progress', 'quiet', '--plain-http', `oci:${dir}:src`, ref], { env: env() });
  assert.is(push.code, 0, push.stderr);
  assert.is(push.stdout.trim(), digest);
  const inspected = JSON.parse(await runOk(requireTool('skopeo'), ['inspect', ...skopeoInspectArgs(reg), `docker://${ref}`])) as { Digest: string };
  assert.is(inspected.Digest, digest);
  const out = join(makeTempDir('plain-out'), 'o');
  const pull = await ocistack(['pull', '--progress', 'quiet', '--plain-http', ref, '--output', `oci:${out}:x`], { env: env() });
  assert.is(pull.code, 0, pull.stderr);
  assert.is(pull.stdout.trim(), digest);
});

test('--tls-verify=false (skopeo semantics): HTTPS first, then plain HTTP; the fallback is reported', async () => {
  const reg = await withRegistry('none', { tls: false });
  const { dir, digest } = await layout();
  const ref = `${reg.host}/giteaadmin/plain:3`;
  const push = await ocistack(['push', '--progress', 'plain', '--tls-verify=false', `oci:${dir}:src`, ref], { env: env() });
  assert.is(push.code, 0, push.stderr);
  assert.is(push.stdout.trim(), digest);
  assert.match(push.stderr, /answered plain HTTP; using plain HTTP \(--tls-verify=false\)/);
});

test('build --push --plain-http reaches the tag registry; a base image on another plain registry host still fails as plain HTTP', async () => {
  const reg = await withRegistry('none', { tls: false });
  const { writeFileSync } = await import('node:fs');
  const ctx = makeTempDir('plain-ctx');
  writeFileSync(join(ctx, 'a'), 'a\n');
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a /a\n');
  const built = await ocistack(['build', '--progress', 'quiet', '--push', '--plain-http', '-t', `${reg.host}/giteaadmin/plain-built:1`, ctx], { env: env() });
  assert.is(built.code, 0, built.stderr);
  const inspected = JSON.parse(await runOk(requireTool('skopeo'), ['inspect', ...skopeoInspectArgs(reg), `docker://${reg.host}/giteaadmin/plain-built:1`])) as { Digest: string };
  assert.is(inspected.Digest, built.stdout.trim());
  // The same registry under another name (127.0.0.1 vs localhost) is another host: --plain-http covers the -t host only.
  const port = reg.host.split(':')[1];
  writeFileSync(join(ctx, 'Dockerfile'), `FROM 127.0.0.1:${port}/giteaadmin/plain-built:1\nCOPY a /b\n`);
  const r = await ocistack(['build', '--progress', 'quiet', '--plain-http', '-t', `${reg.host}/giteaadmin/plain-built:2`, ctx], { env: env() });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`TLS connection to 127\\.0\\.0\\.1:${port} failed: the server answered plain HTTP`));
});

test.run();
