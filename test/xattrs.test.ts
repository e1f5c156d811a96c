/**
 * Extended attributes through a real build: a base image whose layer was
 * made by GNU tar (`--xattrs`) from a file given cap_net_bind_service with
 * Debian's setcap, assembled with umoci and pushed with skopeo; then
 * `ocistack build` with `COPY --from=<that image>` and `COPY --from=<stage>`.
 * The result is checked with GNU tar's xattr listing and with umoci unpack +
 * getcap: the capability bytes must come through unchanged, and a user.*
 * xattr of the source is dropped, as BuildKit does.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { withRegistry, skopeoArgs, type TestRegistry } from './helpers/registry.js';
import { busyboxBase, inspectOciLayout } from './helpers/images.js';
import { makeTempDir, requireTool, run, runOk } from './helpers/tools.js';
import { ocistack } from './helpers/cli.js';

/** The 20 bytes the kernel stores for `setcap cap_net_bind_service=+ep` (VFS_CAP_REVISION_2, effective flag, permitted bit 10). */
const CAP_HEX = '0100000200040000000000000000000000000000';

/** Push an image whose only layer (GNU tar, PAX) holds /bin/x with security.capability and, via a global header, user.g on every entry. */
async function pushCapsImage(reg: TestRegistry, repo: string): Promise<string> {
  const umoci = requireTool('umoci');
  const skopeo = requireTool('skopeo');
  const setcap = requireTool('setcap');
  const work = makeTempDir('caps-image');
  const src = join(work, 'src');
  mkdirSync(join(src, 'bin'), { recursive: true });
  writeFileSync(join(src, 'bin', 'x'), '#!/bin/sh\necho x\n');
  chmodSync(join(src, 'bin', 'x'), 0o755);
  await runOk(setcap, ['cap_net_bind_service=+ep', join(src, 'bin', 'x')]);
  const layer = join(work, 'layer.tar');
  await runOk('tar', ['--xattrs', '--xattrs-include=*', '--format=pax', '--pax-option=SCHILY.xattr.user.g:=global', '--numeric-owner', '-cf', layer, '-C', src, 'bin']);
  // The tar we feed in must itself carry the capability (else the test proves nothing).
  assert.match(await runOk('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', layer]), /x: 20 security\.capability/);
  const dir = join(work, 'layout');
  await runOk(umoci, ['init', '--layout', dir]);
  await runOk(umoci, ['new', '--image', `${dir}:caps`]);
  await runOk(umoci, ['raw', 'add-layer', '--image', `${dir}:caps`, layer]);
  const ref = `${reg.host}/${repo}:1`;
  const r = await run(skopeo, ['copy', '--quiet', ...skopeoArgs(reg, 'dest'), `oci:${dir}:caps`, `docker://${ref}`]);
  assert.is(r.code, 0, r.stderr);
  return ref;
}

/** Path of the blob of `digest` in an OCI layout. */
function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', ...digest.split(':'));
}

test('COPY --from=<image> and --from=<stage> keep security.capability byte for byte; user.* is dropped', async () => {
  const reg = await withRegistry('none');
  const base = await busyboxBase(reg);
  const caps = await pushCapsImage(reg, 'xattrs/caps');
  const ctx = makeTempDir('xattrs-ctx');
  writeFileSync(join(ctx, 'Dockerfile'), [
    `FROM ${caps} AS capstage`,
    `FROM ${base}`,
    `COPY --from=${caps} /bin/x /x`,
    'COPY --from=capstage --chown=1000:1000 /bin/x /x2',
    '',
  ].join('\n'));
  const out = join(ctx, 'layout');
  const r = await ocistack(['build', ctx, '--ca-file', reg.caFile, '-t', 'xattrs:1', '-o', `type=oci,dest=${out}`]);
  assert.is(r.code, 0, r.stderr);
  const img = await inspectOciLayout(out, '1');
  const layers = img.manifest.layers as { digest: string }[];
  const [copyImage, copyStage] = layers.slice(-2).map((l) => blobPath(out, l.digest));

  // GNU tar's view of the two COPY layers: the capability (20 bytes) and nothing else.
  for (const [blob, name] of [[copyImage!, 'x'], [copyStage!, 'x2']] as const) {
    const listing = await runOk('tar', ['--xattrs', '--xattrs-include=*', '-tvvzf', blob]);
    assert.match(listing, new RegExp(`\\s${name}\\n\\s+x: 20 security\\.capability\\n`), listing);
    assert.not.match(listing, /user\.g/, 'user.* xattrs are not kept (BuildKit keeps security.capability only)');
  }

  // umoci unpacks (as root it applies xattrs); getcap decodes them and the raw bytes must equal the setcap original.
  const umoci = requireTool('umoci');
  const getcap = requireTool('getcap');
  const bundle = join(ctx, 'bundle');
  await runOk(umoci, ['unpack', '--image', `${out}:1`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  assert.is((await runOk(getcap, [join(rootfs, 'x'), join(rootfs, 'x2')])).replaceAll(rootfs + '/', '').trim(), 'x cap_net_bind_service=ep\nx2 cap_net_bind_service=ep');
  // Re-packed by GNU tar from the unpacked file: the record holds the xattr's raw bytes.
  const retar = join(ctx, 'x.tar');
  await runOk('tar', ['--xattrs', '--xattrs-include=security.capability', '--format=pax', '-cf', retar, '-C', rootfs, 'x']);
  assert.ok(readFileSync(retar).includes(Buffer.from(`SCHILY.xattr.security.capability=${Buffer.from(CAP_HEX, 'hex').toString('latin1')}\n`, 'latin1')), 'same 20 bytes as setcap wrote');
  assert.is(readFileSync(join(rootfs, 'x'), 'utf8'), '#!/bin/sh\necho x\n');
});

test.run();
