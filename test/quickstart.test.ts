/**
 * The README's first command, `bash scripts/quickstart.sh`, run in a copy of
 * the repository (its own dist/, so the running suite is not disturbed):
 * it must build examples/hello into out/hello, an OCI layout that skopeo
 * reads, with .dockerignore applied and --chown kept.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { inspectOciLayout } from './helpers/images.js';
import { makeTempDir, run } from './helpers/tools.js';
import { REPO_ROOT } from './helpers/cli.js';

const COPIED = ['bin', 'lib', 'examples', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json', 'node_modules'];

test('bash scripts/quickstart.sh builds examples/hello into an OCI layout', async () => {
  const copy = makeTempDir('quickstart');
  // preserveTimestamps keeps node_modules' install stamp newer than package.json: no npm ci.
  for (const name of COPIED) cpSync(join(REPO_ROOT, name), join(copy, name), { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const r = await run('bash', ['scripts/quickstart.sh'], { cwd: copy, timeoutMs: 300_000 });
  assert.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /done: the image is in out\/hello/);
  const layout = join(copy, 'out', 'hello');
  assert.ok(existsSync(join(layout, 'index.json')));

  const img = await inspectOciLayout(layout, 'latest');
  assert.is(img.config.config.User, '1000:1000');
  assert.is(img.config.config.WorkingDir, '/srv/www');
  assert.is(img.config.config.Labels['org.opencontainers.image.version'], '0.1.0');

  const listing: string[] = [];
  for (const layer of img.manifest.layers as { digest: string }[]) {
    const t = await run('tar', ['tvzf', join(layout, 'blobs', 'sha256', layer.digest.slice(7))]);
    assert.is(t.code, 0, t.stderr);
    listing.push(...t.stdout.trim().split('\n'));
  }
  const text = listing.join('\n');
  assert.match(text, /srv\/www\/index\.html/);
  assert.not.match(text, /drafts/, '.dockerignore excludes www/drafts/');
  assert.not.match(text, /README\.md/, '.dockerignore excludes README.md');
  assert.match(text, /1000\/1000 .* srv\/greeting\.txt/, 'COPY --chown=1000:1000 is kept');
});

test.run();
