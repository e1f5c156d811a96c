/**
 * Build outputs (issue 11), checked by the tools that read them, never by
 * our own readers: every output of one build (OCI layout, OCI archive,
 * docker archive, local file system) with skopeo (`oci-archive:`,
 * `docker-archive:`), umoci (the unpacked OCI image against the local
 * output, path by path) and tar (manifest.json's RepoTags); a failed build
 * leaves no output and no temp file; existing destinations; bad `--output`
 * specs; `-o type=registry` and an unchanged second push that sends nothing
 * but HEADs (OCISTACK_DEBUG_HTTP traces every request).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { build } from '../lib/engine/build.js';
import { stageFile } from '../lib/output/staging.js';
import { busyboxBase } from './helpers/images.js';
import { BIN, ocistack } from './helpers/cli.js';
import { withRegistry } from './helpers/registry.js';
import { describeTree, diffTrees } from './helpers/tree-compare.js';
import { makeTempDir, requireTool, run, runOk } from './helpers/tools.js';

const EPOCH = '1700000000';

function sha256(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function cacheEnv(): NodeJS.ProcessEnv {
  return { OCISTACK_CACHE_DIR: join(makeTempDir('out-cache'), 'c') };
}

/** A context with nested dirs, an executable, a symlink and an empty file. */
function appContext(dockerfile: string): string {
  const dir = makeTempDir('out-ctx');
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  mkdirSync(join(dir, 'app', 'lib', 'deep'), { recursive: true });
  writeFileSync(join(dir, 'app', 'run.sh'), '#!/bin/sh\necho hello\n');
  chmodSync(join(dir, 'app', 'run.sh'), 0o755);
  writeFileSync(join(dir, 'app', 'lib', 'deep', 'data.txt'), 'x'.repeat(70_000));
  writeFileSync(join(dir, 'app', 'empty'), '');
  symlinkSync('lib/deep/data.txt', join(dir, 'app', 'data-link'));
  return dir;
}

async function skopeo(args: string[]): Promise<string> {
  return runOk(requireTool('skopeo'), args);
}

/** umoci's unpack of image `tag` of an OCI layout: the rootfs directory. */
async function umociRootfs(layout: string, tag: string): Promise<string> {
  const bundle = join(makeTempDir('out-umoci'), 'bundle');
  await runOk(requireTool('umoci'), ['unpack', '--image', `${layout}:${tag}`, bundle]);
  return join(bundle, 'rootfs');
}

function sameTree(a: string, b: string, names: [string, string]): void {
  const d = diffTrees(describeTree(a), describeTree(b), names);
  assert.equal(d, [], `trees differ:\n${d.slice(0, 20).join('\n')}`);
}

function dockerManifestJson(file: string): Promise<{ Config: string; RepoTags: string[] | null; Layers: string[] }[]> {
  return runOk(requireTool('tar'), ['-xOf', file, 'manifest.json']).then((s) => JSON.parse(s));
}

test('every output of one build on a busybox base: skopeo reads the archives, umoci unpacks what the local output holds', async () => {
  const reg = await withRegistry('none');
  const base = await busyboxBase(reg);
  const ctx = appContext(`FROM ${base}\nCOPY app/ /app/\nCOPY --chown=1000:1000 app/run.sh /home/app/run.sh\nWORKDIR /app\nCMD ["/app/run.sh"]\n`);
  const work = makeTempDir('out-all');
  const o = (n: string) => join(work, n);
  const tag = `${reg.host}/giteaadmin/outputs:1`;
  const r = await ocistack(
    [
      'build', '--progress', 'plain', '--ca-file', reg.caFile, '-t', tag, '-t', 'outputs-app:dev',
      '-o', `type=oci,dest=${o('layout')}`, '-o', `type=oci,dest=${o('image-oci.tar')}`, '--output', `type=docker,dest=${o('image-docker.tar')}`,
      '-o', `type=local,dest=${o('rootfs')}`, '-o', o('rootfs-plain'),
      '--digest-file', o('digest.txt'), '--metadata-file', o('meta.json'), ctx,
    ],
    { env: cacheEnv() },
  );
  assert.is(r.code, 0, r.stderr);
  const digest = r.stdout.trim();
  assert.match(digest, /^sha256:[a-f0-9]{64}$/);
  assert.is(readFileSync(o('digest.txt'), 'utf8'), `${digest}\n`);
  // Written by rename: nothing but the outputs beside them.
  assert.equal(readdirSync(work).sort(), ['digest.txt', 'image-docker.tar', 'image-oci.tar', 'layout', 'meta.json', 'rootfs', 'rootfs-plain']);

  // OCI archive: the same manifest as the layout, readable and copyable by skopeo.
  const rawArchive = await skopeo(['inspect', '--raw', `oci-archive:${o('image-oci.tar')}`]);
  assert.is(sha256(rawArchive), digest, 'oci-archive: serves the built manifest');
  const rawLayout = await skopeo(['inspect', '--raw', `oci:${o('layout')}:1`]);
  assert.is(sha256(rawLayout), digest);
  await skopeo(['copy', '--quiet', `oci-archive:${o('image-oci.tar')}`, `dir:${o('from-oci-archive')}`]);
  assert.is(sha256(readFileSync(join(o('from-oci-archive'), 'manifest.json'))), digest, 'skopeo copied the manifest unchanged');

  // Docker archive: RepoTags in docker's familiar form, config byte-identical (same image ID).
  const meta = JSON.parse(readFileSync(o('meta.json'), 'utf8')) as Record<string, any>;
  const dm = await dockerManifestJson(o('image-docker.tar'));
  assert.is(dm.length, 1);
  assert.equal(dm[0]!.RepoTags, [tag, 'outputs-app:dev']);
  const manifest = JSON.parse(rawLayout) as { config: { digest: string }; layers: { digest: string }[] };
  assert.is(dm[0]!.Layers.length, manifest.layers.length);
  const dockerConfig = await skopeo(['inspect', '--config', '--raw', `docker-archive:${o('image-docker.tar')}`]);
  assert.is(sha256(dockerConfig), manifest.config.digest, 'the docker archive carries the config unchanged');
  assert.is(meta['containerimage.config.digest'], manifest.config.digest);
  const byTag = JSON.parse(await skopeo(['inspect', `docker-archive:${o('image-docker.tar')}:outputs-app:dev`])) as { Layers: string[] };
  assert.is(byTag.Layers.length, manifest.layers.length, 'skopeo finds the image by its RepoTag');
  await skopeo(['copy', '--quiet', `docker-archive:${o('image-docker.tar')}`, `oci:${o('from-docker')}:img`]);

  // The file systems: umoci's unpack of the OCI layout, of the OCI archive's and the docker
  // archive's copies, and both local outputs are the same tree (types, modes, owners, contents, links).
  const fromLayout = await umociRootfs(o('layout'), '1');
  sameTree(o('rootfs'), fromLayout, ['local output', 'umoci unpack of the layout']);
  sameTree(o('rootfs-plain'), fromLayout, ['-o PATH', 'umoci unpack of the layout']);
  sameTree(o('rootfs'), await umociRootfs(o('from-docker'), 'img'), ['local output', 'umoci unpack of skopeo copy docker-archive:']);
  const tree = describeTree(o('rootfs'));
  assert.match(tree.get('/app/run.sh')!, /^\/app\/run\.sh f 0755 0:0 /);
  assert.match(tree.get('/app/data-link')!, /-> lib\/deep\/data\.txt$/);
  assert.match(tree.get('/home/app/run.sh')!, / 1000:1000 /, 'owners kept (running as root)');
  assert.match(tree.get('/bin/sh')!, /-> busybox$/, 'the base image is there too');
  assert.match(tree.get('/tmp')!, /^\/tmp d 1777 /);

  // --metadata-file: sizes, tags, outputs and every step with its cache state and time.
  assert.is(meta['containerimage.digest'], digest);
  assert.equal(meta['ocistack.tags'], [tag, 'outputs-app:dev']);
  const layerBytes = (JSON.parse(rawLayout).layers as { size: number }[]).reduce((n, l) => n + l.size, 0);
  assert.is(meta['ocistack.size'], Buffer.byteLength(dockerConfig) + layerBytes, 'size = config + layers');
  assert.equal(meta['ocistack.outputs'].map((x: { type: string }) => x.type), ['oci', 'oci', 'docker', 'local', 'local']);
  const steps = meta['ocistack.steps'] as { id: string; name: string; cached: boolean; durationMs: number }[];
  assert.equal(steps.map((s) => s.name.replace(/^\[\d+\] /, '').split(' ')[0]), ['COPY', 'COPY', 'WORKDIR', 'CMD']);
  for (const s of steps) {
    assert.type(s.cached, 'boolean');
    assert.ok(Number.isFinite(s.durationMs) && s.durationMs >= 0, `${s.name}: durationMs ${s.durationMs}`);
  }
  assert.equal(meta['ocistack.cache'], { steps: 4, cached: steps.filter((s) => s.cached).length });
  assert.match(r.stderr, /wrote docker archive .*image-docker\.tar/);
});

test('FROM scratch through the library: archives are reproducible byte for byte, the docker archive copies back to the same image', async () => {
  const ctx = appContext('FROM scratch\nCOPY app/ /app/\nCOPY app/run.sh /bin/run\n');
  const once = async (n: string) => {
    const work = makeTempDir(`out-lib-${n}`);
    const res = await build({
      context: ctx,
      tags: ['example.test/team/app:v1'],
      output: [
        { type: 'oci', dest: join(work, 'new', 'dir', 'image.tar') },
        { type: 'docker', dest: join(work, 'image-docker.tar') },
        { type: 'local', dest: join(work, 'rootfs') },
      ],
      cacheDir: join(makeTempDir('out-lib-cache'), 'c'),
      sourceDateEpoch: Number(EPOCH),
      env: {},
    });
    return { work, res };
  };
  const a = await once('a');
  const b = await once('b');
  assert.is(a.res.manifestDigest, b.res.manifestDigest);
  for (const f of [join('new', 'dir', 'image.tar'), 'image-docker.tar']) {
    assert.is(sha256(readFileSync(join(a.work, f))), sha256(readFileSync(join(b.work, f))), `${f} is reproducible`);
  }
  const dm = await dockerManifestJson(join(a.work, 'image-docker.tar'));
  assert.equal(dm[0]!.RepoTags, ['example.test/team/app:v1']);
  // docker-archive -> OCI layout by skopeo, unpacked by umoci = our local output.
  const layout = join(a.work, 'copied');
  await skopeo(['copy', '--quiet', `docker-archive:${join(a.work, 'image-docker.tar')}`, `oci:${layout}:x`]);
  sameTree(join(a.work, 'rootfs'), await umociRootfs(layout, 'x'), ['local output', 'umoci unpack of skopeo copy docker-archive:']);
  await skopeo(['copy', '--quiet', `oci-archive:${join(a.work, 'new', 'dir', 'image.tar')}`, `oci:${join(a.work, 'copied2')}:y`]);
  sameTree(join(a.work, 'rootfs'), await umociRootfs(join(a.work, 'copied2'), 'y'), ['local output', 'umoci unpack of the OCI archive']);
  assert.equal(readdirSync(join(a.work, 'rootfs')).sort(), ['app', 'bin']);
});

test('a failed build (bad COPY source) writes no output, no temp file, and leaves existing archives untouched', async () => {
  const ctx = appContext('FROM scratch\nCOPY app/ /app/\nCOPY does-not-exist /x\n');
  const work = makeTempDir('out-fail');
  writeFileSync(join(work, 'old.tar'), 'previous contents');
  const r = await ocistack(
    ['build', '--progress', 'plain', '-o', `type=oci,dest=${join(work, 'layout')}`, '-o', `type=oci,dest=${join(work, 'a.tar')}`, '-o', `type=docker,dest=${join(work, 'old.tar')}`, '-o', `type=local,dest=${join(work, 'rootfs')}`, '--digest-file', join(work, 'd.txt'), ctx],
    { env: cacheEnv() },
  );
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /Dockerfile:3/);
  assert.match(r.stderr, /does-not-exist/);
  assert.equal(readdirSync(work), ['old.tar'], 'nothing written, no temp left');
  assert.is(readFileSync(join(work, 'old.tar'), 'utf8'), 'previous contents');
});

test('SIGINT while the local output is being unpacked: exit 130, no rootfs, no temp; outputs finished before stay whole', async () => {
  const ctx = appContext('FROM scratch\nCOPY files/ /files/\n');
  mkdirSync(join(ctx, 'files'));
  for (let i = 0; i < 4000; i++) writeFileSync(join(ctx, 'files', `f${i}.txt`), `file ${i}\n`);
  const work = makeTempDir('out-int');
  const child = spawn(process.execPath, [BIN, 'build', '--progress', 'plain', '-o', `type=docker,dest=${join(work, 'image.tar')}`, '-o', `type=local,dest=${join(work, 'rootfs')}`, ctx], {
    env: { ...process.env, ...cacheEnv() },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Sent once the local output's staging directory exists (polled; never a timed guess).
  let sent = false;
  const poll = setInterval(() => {
    if (!sent && readdirSync(work).some((n) => n.startsWith('.rootfs.tmp-'))) {
      sent = true;
      child.kill('SIGINT');
    }
  }, 5);
  const code = await exited;
  clearInterval(poll);
  assert.ok(sent, `the build ended before the local output was staged:\n${stderr}`);
  assert.is(code, 130, stderr);
  assert.equal(readdirSync(work), ['image.tar'], 'no rootfs and no staging dir left');
  assert.equal((await dockerManifestJson(join(work, 'image.tar')))[0]!.Layers.length, 1, 'the docker archive written before is whole');
});

test('an output that fails while it is written leaves the old destination and no temp file', async () => {
  const dir = makeTempDir('out-stage');
  const dest = join(dir, 'image.tar');
  writeFileSync(dest, 'old');
  try {
    await stageFile(dest, undefined, async (tmp) => {
      await fsp.writeFile(tmp, 'half written');
      throw new Error('disk full');
    });
    assert.unreachable('stageFile succeeded');
  } catch (e) {
    assert.match((e as Error).message, /disk full/);
  }
  assert.equal(readdirSync(dir), ['image.tar']);
  assert.is(readFileSync(dest, 'utf8'), 'old');
  await stageFile(dest, undefined, (tmp) => fsp.writeFile(tmp, 'new'));
  assert.is(readFileSync(dest, 'utf8'), 'new');
  assert.equal(readdirSync(dir), ['image.tar']);
});

test('existing destinations: archives replace files but not directories; a local output takes a new or empty directory only', async () => {
  const ctx = appContext('FROM scratch\nCOPY app/run.sh /run.sh\n');
  const work = makeTempDir('out-exist');
  const env = cacheEnv();
  const full = join(work, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'keep.txt'), 'mine');
  const aDir = join(work, 'dir.tar');
  mkdirSync(aDir);
  const aFile = join(work, 'file');
  writeFileSync(aFile, 'x');
  const bad: [string, RegExp][] = [
    [`type=local,dest=${full}`, /--output dest .*full exists and is not empty.*\n.*hint: remove it first/],
    [`type=local,dest=${aFile}`, /--output dest .*file is an existing file, but a local output is a directory/],
    [`type=oci,dest=${aDir}`, /--output dest .*dir\.tar is a directory, but an OCI archive is a file/],
    [`type=docker,dest=${aDir}`, /--output dest .*dir\.tar is a directory, but a docker archive is a file/],
    [`type=docker,dest=${join(aFile, 'x.tar')}`, /a part of this path is a file/],
  ];
  for (const [spec, message] of bad) {
    const r = await ocistack(['build', '--progress', 'quiet', '-o', spec, ctx], { env });
    assert.is(r.code, 1, `${spec}: ${r.stderr}`);
    assert.match(r.stderr, message, spec);
  }
  assert.equal(readdirSync(full), ['keep.txt'], 'nothing of the user deleted');

  const empty = join(work, 'empty');
  mkdirSync(empty);
  const old = join(work, 'old.tar');
  writeFileSync(old, 'not a tar');
  // --digestfile: podman's and buildah's spelling of --digest-file.
  const r = await ocistack(['build', '--progress', 'quiet', '-o', `type=local,dest=${empty}`, '-o', `type=docker,dest=${old}`, '--digestfile', join(work, 'd.txt'), ctx], { env });
  assert.is(r.code, 0, r.stderr);
  assert.is(readFileSync(join(work, 'd.txt'), 'utf8'), r.stdout);
  assert.equal(readdirSync(empty), ['run.sh']);
  assert.equal((await dockerManifestJson(old))[0]!.RepoTags, null, 'no -t: no RepoTags');
  // Two outputs to one place is a usage error.
  const twice = await ocistack(['build', '-o', `type=docker,dest=${join(work, 'x.tar')}`, '-o', `type=oci,dest=${join(work, 'x.tar')}`, ctx], { env });
  assert.is(twice.code, 2, twice.stderr);
  assert.match(twice.stderr, /two outputs write to .*x\.tar/);
});

test('bad --output specs exit 2 naming the flag and the fix', async () => {
  const ctx = appContext('FROM scratch\nCOPY app/run.sh /run.sh\n');
  const cases: [string, RegExp, RegExp][] = [
    ['type=tar,dest=x', /--output type "tar" is not supported/, /type=oci,dest=FILE\.tar/],
    ['type=docker', /--output type=docker needs a dest/, /-o type=docker,dest=image\.tar/],
    ['type=local', /--output type=local needs a dest/, /dest=out/],
    ['type=oci,dest=a,compression=zstd', /--output type=oci has no key "compression"/, /its keys are type, dest/],
    ['dest=x', /--output "dest=x" has no type/, /type=local,dest=out/],
    ['type=oci,,dest=x', /is not KEY=VALUE/, /-o type=oci,dest=image\.tar/],
    ['-', /--output "-" .*not supported/, /-o type=docker,dest=image\.tar/],
    ['type=docker,dest=-', /dest=- \(stdout\) is not supported/, /dest=image\.tar/],
    ['type=registry,push=false', /a registry output always pushes/, /drop push=/],
    ['type=registry', /--push \(or -o type=registry\) needs at least one -t REF/, /name=REF/],
  ];
  for (const [spec, message, hint] of cases) {
    const r = await ocistack(['build', '-o', spec, ctx], { env: cacheEnv() });
    assert.is(r.code, 2, `${spec}: ${r.stderr}`);
    assert.match(r.stderr, message, spec);
    assert.match(r.stderr, hint, `${spec}: hint`);
  }
});

/** The `[http]` trace lines of a run, as `METHOD path -> status`. */
function httpTrace(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('[http] ')).map((l) => l.replace(/^\[http\] \+\d+ms /, '').replace(/\s+/g, ' ').trim());
}

test('-o type=registry pushes; an unchanged rebuild pushes nothing but HEADs, a new tag only its manifest', async () => {
  const reg = await withRegistry('none');
  const ctx = appContext('FROM scratch\nCOPY app/ /app/\n');
  const repo = `${reg.host}/giteaadmin/outputs-push`;
  const env = { ...cacheEnv(), OCISTACK_DEBUG_HTTP: '1' };
  const push = (...extra: string[]) => ocistack(['build', '--progress', 'plain', '--ca-file', reg.caFile, '--source-date-epoch', EPOCH, ...extra, ctx], { env });

  const first = await push('-t', `${repo}:1`, '-o', `type=registry,name=${repo}:2`);
  assert.is(first.code, 0, first.stderr);
  const digest = first.stdout.trim();
  const t1 = httpTrace(first.stderr);
  assert.ok(t1.some((l) => /^PUT \/v2\/giteaadmin\/outputs-push\/manifests\/1 -> 201/.test(l)), t1.join('\n'));
  assert.ok(t1.some((l) => /^PUT \/v2\/giteaadmin\/outputs-push\/manifests\/2 -> 201/.test(l)), 'name= is a tag');
  assert.ok(t1.some((l) => /^(POST|PATCH|PUT) \/v2\/giteaadmin\/outputs-push\/blobs\/uploads\//.test(l)), 'blobs were uploaded');

  // Unchanged (same epoch, same content): the same digest, and only HEADs of the tags.
  const second = await push('-t', `${repo}:1`, '-t', `${repo}:2`, '--push');
  assert.is(second.code, 0, second.stderr);
  assert.is(second.stdout.trim(), digest);
  const t2 = httpTrace(second.stderr).filter((l) => l.includes('/outputs-push/'));
  assert.equal(t2, ['HEAD /v2/giteaadmin/outputs-push/manifests/1 -> 200', 'HEAD /v2/giteaadmin/outputs-push/manifests/2 -> 200'], t2.join('\n'));
  assert.match(second.stderr, /outputs-push:1 is already sha256:[a-f0-9]{64}: nothing to push/);

  // A new tag: blobs are HEADed (present), nothing uploaded, one manifest PUT for the new tag only.
  const third = await push('-t', `${repo}:1`, '-t', `${repo}:3`, '--push');
  assert.is(third.code, 0, third.stderr);
  const t3 = httpTrace(third.stderr).filter((l) => l.includes('/outputs-push/'));
  assert.not.ok(t3.some((l) => /blobs\/uploads/.test(l)), `no upload:\n${t3.join('\n')}`);
  assert.equal(t3.filter((l) => l.startsWith('PUT ')), ['PUT /v2/giteaadmin/outputs-push/manifests/3 -> 201']);
  assert.ok(t3.some((l) => /^HEAD \/v2\/giteaadmin\/outputs-push\/blobs\/sha256:/.test(l)), 'blobs checked by HEAD first');
  // The registry serves the digest for the new tag.
  const inspected = await run(requireTool('skopeo'), ['inspect', '--raw', '--cert-dir', reg.certDir, '--no-creds', `docker://${repo}:3`]);
  assert.is(inspected.code, 0, inspected.stderr);
  assert.is(sha256(inspected.stdout), digest);
  assert.ok(existsSync(reg.caFile));
});

test.run();
