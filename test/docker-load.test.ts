/**
 * `--output type=docker,dest=FILE.tar` loaded by a real Docker: Debian's
 * docker.io dockerd (20.10), started once for this file as a private daemon
 * (helpers/dockerd.ts: own data root and socket, no bridge, no iptables).
 * `docker load -i` takes an ocistack build of a busybox-based image with an
 * ENV, a CMD and a COPYed file; `docker image inspect` then shows the tags
 * of the build (RepoTags), its Env and Cmd, the config digest as image ID
 * and the image's diff_ids as RootFS layers; `docker run --network none`
 * prints the COPYed file and the ENV value; containerd's `ctr images import`
 * (what `kind load image-archive` runs on a node, into dockerd's own
 * containerd) takes it and finds its content complete. `podman load` (Debian's podman,
 * no service: a private --root/--runroot with vfs storage) reads the same
 * kind of archive.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startDockerd, type Dockerd } from './helpers/dockerd.js';
import { withRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxBase } from './helpers/images.js';
import { ocistack } from './helpers/cli.js';
import { makeTempDir, requireTool, runOk } from './helpers/tools.js';

let reg: TestRegistry;
let base: string;
let dockerd: Dockerd;
let dockerdDir: string;
const after: (() => void)[] = [];

test.before(async () => {
  requireTool('dockerd');
  reg = await withRegistry('none');
  base = await busyboxBase(reg);
  dockerdDir = makeTempDir('dockerd');
  dockerd = await startDockerd(dockerdDir);
});

test.after(async () => {
  await dockerd?.stop();
  for (const f of after) f();
});

function docker(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(dockerd.docker, args, { env: dockerd.env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('docker load reads a type=docker output: tags, Env, Cmd, image ID and layers as built; docker run prints the COPYed file; containerd imports it as kind load does', async () => {
  const ctx = makeTempDir('docker-load-ctx');
  writeFileSync(join(ctx, 'msg.txt'), 'copied by ocistack\n');
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nENV GREETING=hello-from-env\nCOPY msg.txt /msg.txt\nCMD ["/bin/sh", "-c", "cat /msg.txt; echo $GREETING"]\n`);
  const out = join(makeTempDir('docker-load-out'), 'image.tar');
  const tags = ['localhost/ocistack-load:1', 'ocistack-load:dev'];
  const r = await ocistack(['build', '--progress', 'plain', '--ca-file', reg.caFile, ...tags.flatMap((t) => ['-t', t]), '--output', `type=docker,dest=${out}`, ctx]);
  assert.is(r.code, 0, r.stderr);

  // What the archive says (the config as written by ocistack).
  const tar = requireTool('tar');
  const manifest = JSON.parse(await runOk(tar, ['-xOf', out, 'manifest.json'])) as { Config: string; RepoTags: string[] }[];
  const config = JSON.parse(await runOk(tar, ['-xOf', out, manifest[0]!.Config])) as { rootfs: { diff_ids: string[] } };
  const configDigest = `sha256:${manifest[0]!.Config.split('/').pop()}`;
  assert.is(config.rootfs.diff_ids.length, 2, 'busybox layer + COPY layer');

  const load = docker(['load', '-i', out]);
  assert.is(load.code, 0, load.stderr);
  for (const t of tags) assert.match(load.stdout, `Loaded image: ${t}`);

  const inspect = docker(['image', 'inspect', tags[0]!]);
  assert.is(inspect.code, 0, inspect.stderr);
  const [img] = JSON.parse(inspect.stdout) as { Id: string; RepoTags: string[]; Config: { Env: string[]; Cmd: string[] }; RootFS: { Type: string; Layers: string[] } }[];
  assert.equal([...img!.RepoTags].sort(), [...tags].sort());
  assert.is(img!.Id, configDigest, 'the image ID is the config digest: the config was loaded unchanged');
  assert.ok(img!.Config.Env.includes('GREETING=hello-from-env'), img!.Config.Env.join(' '));
  assert.equal(img!.Config.Cmd, ['/bin/sh', '-c', 'cat /msg.txt; echo $GREETING']);
  assert.is(img!.RootFS.Type, 'layers');
  assert.equal(img!.RootFS.Layers, config.rootfs.diff_ids, 'docker unpacked every layer to the diff_ids of the config');

  const run = docker(['run', '--rm', '--network', 'none', tags[1]!]);
  assert.is(run.code, 0, run.stderr);
  assert.is(run.stdout, 'copied by ocistack\nhello-from-env\n');

  // What `kind load image-archive` runs on a node: containerd's import (here into dockerd's own containerd).
  const ctr = requireTool('ctr');
  const sock = join(dockerdDir, 'exec', 'containerd', 'containerd.sock');
  const ctrRun = (args: string[], input?: Buffer) => spawnSync(ctr, ['--address', sock, '--namespace', 'k8s.io', ...args], { encoding: 'utf8', timeout: 120_000, ...(input ? { input } : {}) });
  const imp = ctrRun(['images', 'import', '--all-platforms', '--digests', '--snapshotter', 'overlayfs', '-'], readFileSync(out));
  assert.is(imp.status, 0, imp.stderr);
  const names = ctrRun(['images', 'ls', '-q']).stdout.trim().split('\n');
  for (const n of ['localhost/ocistack-load:1', 'docker.io/library/ocistack-load:dev']) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
  const check = ctrRun(['images', 'check', 'name==localhost/ocistack-load:1']);
  assert.is(check.status, 0, check.stderr);
  assert.match(check.stdout, /complete \(\d+\/\d+\)/, check.stdout);
});

test('podman load reads it too (no service: private --root/--runroot, vfs storage): tags, Env, Cmd, image ID and layers', async () => {
  const podman = requireTool('podman');
  const ctx = makeTempDir('podman-load-ctx');
  writeFileSync(join(ctx, 'msg.txt'), 'copied by ocistack\n');
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nENV GREETING=hello-from-env\nCOPY msg.txt /msg.txt\nCMD ["/bin/sh", "-c", "cat /msg.txt"]\n`);
  const out = join(makeTempDir('podman-load-out'), 'image.tar');
  const tag = 'localhost/ocistack-podman:1';
  const r = await ocistack(['build', '--progress', 'plain', '--ca-file', reg.caFile, '-t', tag, '--output', `type=docker,dest=${out}`, ctx]);
  assert.is(r.code, 0, r.stderr);
  const tar = requireTool('tar');
  const manifest = JSON.parse(await runOk(tar, ['-xOf', out, 'manifest.json'])) as { Config: string }[];
  const config = JSON.parse(await runOk(tar, ['-xOf', out, manifest[0]!.Config])) as { rootfs: { diff_ids: string[] } };
  const store = makeTempDir('podman-store');
  // podman refuses a runroot longer than 50 characters: the test's temp dirs are longer.
  const runroot = mkdtempSync('/tmp/ocistack-podman-');
  after.push(() => rmSync(runroot, { recursive: true, force: true }));
  const global = ['--root', join(store, 'root'), '--runroot', runroot, '--tmpdir', join(store, 'tmp'), '--storage-driver', 'vfs', '--events-backend', 'none'];
  const podmanRun = (args: string[]) => spawnSync(podman, [...global, ...args], { encoding: 'utf8', timeout: 120_000 });
  const load = podmanRun(['load', '-i', out]);
  assert.is(load.status, 0, load.stderr);
  assert.match(load.stdout, `Loaded image: ${tag}`);
  const inspect = podmanRun(['image', 'inspect', tag]);
  assert.is(inspect.status, 0, inspect.stderr);
  const [img] = JSON.parse(inspect.stdout) as { Id: string; RepoTags: string[]; Config: { Env: string[]; Cmd: string[] }; RootFS: { Layers: string[] } }[];
  assert.equal(img!.RepoTags, [tag]);
  assert.is(`sha256:${img!.Id}`, `sha256:${manifest[0]!.Config.split('/').pop()}`, 'the image ID is the config digest');
  assert.ok(img!.Config.Env.includes('GREETING=hello-from-env'));
  assert.equal(img!.Config.Cmd, ['/bin/sh', '-c', 'cat /msg.txt']);
  assert.equal(img!.RootFS.Layers, config.rootfs.diff_ids);
});

test.run();
