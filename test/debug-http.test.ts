/**
 * OCISTACK_DEBUG_HTTP traces requests without query values (issue 8,
 * Security): blob redirects to storage are pre-signed URLs whose query
 * carries the signature, and upload locations carry state tokens.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { BlobStore } from '../lib/image/store.js';
import { pullImage, pushImage } from '../lib/registry/index.js';
import { startHttpProxy } from './helpers/http-proxy.js';
import { makeRandomImage } from './helpers/random-image.js';
import { startRegistry } from './helpers/registry.js';
import { makeTempDir } from './helpers/tools.js';

const SIGNATURE = 'SIGsecret0123456789';
const CREDENTIAL = 'AKIDsecret42';

/** Run `fn` with OCISTACK_DEBUG_HTTP=1 and return what it wrote to stderr. */
async function debugStderr(fn: () => Promise<unknown>): Promise<string> {
  const saved = process.env.OCISTACK_DEBUG_HTTP;
  const write = process.stderr.write.bind(process.stderr);
  let out = '';
  process.env.OCISTACK_DEBUG_HTTP = '1';
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    process.stderr.write = write;
    if (saved === undefined) delete process.env.OCISTACK_DEBUG_HTTP;
    else process.env.OCISTACK_DEBUG_HTTP = saved;
  }
  return out;
}

test('OCISTACK_DEBUG_HTTP: a pull through a pre-signed redirect prints no query values', async () => {
  const reg = await startRegistry({ auth: 'none', tls: false });
  const proxy = await startHttpProxy({
    upstream: reg.registryHost.replace('localhost', '127.0.0.1'),
    redirectBlobs: true,
    redirectQuery: `X-Amz-Signature=${SIGNATURE}&X-Amz-Credential=${CREDENTIAL}`,
  });
  try {
    const store = new BlobStore(join(makeTempDir('dbg-store'), 'cache'));
    const img = await makeRandomImage(store, [50_000]);
    const ref = `${reg.host}/giteaadmin/debug:1`;
    const pushed = await debugStderr(() => pushImage({ store, manifest: img.descriptor, tags: [ref], registry: { env: {}, plainHttpRegistries: [reg.host] } }));
    // docker-registry's upload locations carry a signed _state token.
    assert.match(pushed, /\[http\] .*PATCH|\[http\] .*PUT/, 'the push was traced');
    assert.not.match(pushed, /_state=/, 'upload state token printed');

    const out = await debugStderr(() =>
      pullImage({ ref: ref.replace(reg.host, proxy.host), store: new BlobStore(join(makeTempDir('dbg-store2'), 'cache')), registry: { env: {}, plainHttpRegistries: [proxy.host] } }),
    );
    assert.ok(proxy.seen.some((s) => s.listener === 'redirect' && s.path.includes(SIGNATURE)), 'the redirect carried the signature');
    assert.match(out, /\[http\] .*GET \/v2\/giteaadmin\/debug\/blobs\/sha256:[a-f0-9]{64}\?X-Amz-Signature&X-Amz-Credential /, 'query keys are shown, values not');
    assert.not.ok(out.includes(SIGNATURE), `signature printed:\n${out}`);
    assert.not.ok(out.includes(CREDENTIAL), 'credential printed');
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});

test.run();
