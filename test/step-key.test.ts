/**
 * Step keys (lib/engine/step-key.ts) without a build: a key is made from a
 * stat walk and the content digests alone (no file of the context is opened
 * by the key itself), what changes it and what does not, and ADD of a URL
 * without --checksum is not cacheable.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openContext } from '../lib/context/index.js';
import type { BuildContext } from '../lib/context/index.js';
import type { ContentDigests } from '../lib/context/content-digests.js';
import { sha256 } from '../lib/image/digest.js';
import type { Dispatched } from '../lib/dockerfile/types.js';
import type { Digest } from '../lib/image/types.js';
import { isFilesystemStep, stepKey } from '../lib/engine/step-key.js';
import type { ContainerConfig } from '../lib/image/types.js';
import { makeTempDir } from './helpers/tools.js';

const PARENT = sha256('parent');

function copyOf(sources: string[], extra: Record<string, unknown> = {}): Dispatched {
  return {
    resolved: { kind: 'copy', sources, dest: '/app/', heredocs: [], link: false, parents: false, exclude: [], keepGitDir: false, ...extra } as Dispatched['resolved'],
    location: { file: 'Dockerfile', line: 2 },
    createdBy: `COPY ${sources.join(' ')} /app/ # buildkit`,
  };
}

async function setup(): Promise<{ dir: string; context: BuildContext; opened: string[]; digested: string[]; digests: ContentDigests }> {
  const dir = makeTempDir('step-key');
  fs.mkdirSync(path.join(dir, 'app', 'lib'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'app', 'main.js'), 'main');
  fs.writeFileSync(path.join(dir, 'app', 'lib', 'u.js'), 'u');
  fs.writeFileSync(path.join(dir, 'app', 'debug.log'), 'log');
  fs.symlinkSync('main.js', path.join(dir, 'app', 'index.js'));
  fs.writeFileSync(path.join(dir, '.dockerignore'), '**/*.log\n');
  fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
  const context = await openContext({ dir, dockerfile: path.join(dir, 'Dockerfile') });
  const opened: string[] = [];
  const patched: string[] = [];
  const src = context.source as unknown as Record<string, unknown>;
  for (const name of ['open', 'readHead', 'checkReadable']) {
    const orig = src[name] as ((...a: unknown[]) => unknown) | undefined;
    if (typeof orig !== 'function') continue;
    patched.push(name);
    src[name] = (...a: unknown[]) => {
      opened.push(`${name} ${String(a[0])}`);
      return orig.apply(context.source, a);
    };
  }
  assert.ok(patched.includes('open'), 'the context source has open() to watch');
  const digested: string[] = [];
  // Content as the stat cache would answer it: here the file's bytes, read outside the context's source.
  const digests: ContentDigests = {
    fileDigest: async (rel: string) => {
      digested.push(rel);
      return sha256(fs.readFileSync(path.join(dir, rel)));
    },
    save: async () => {},
  };
  return { dir, context, opened, digested, digests };
}

async function key(context: BuildContext, digests: ContentDigests, d: Dispatched, sde?: number, config: ContainerConfig = {}): Promise<Digest | undefined> {
  return stepKey({ parent: PARENT, config, platform: 'linux/amd64', dispatched: d, context, digests: async () => digests, sourceDateEpoch: sde, fromKey: async (f) => sha256(`stage ${f}`) });
}

test('a COPY key opens no context file: only the stat walk and the content digests of the selected files', async () => {
  const { context, opened, digested, digests } = await setup();
  const k = await key(context, digests, copyOf(['app']));
  assert.ok(k);
  assert.equal(opened, []);
  assert.equal(digested.sort(), ['app/lib/u.js', 'app/main.js'], 'not the ignored log, not the symlink');
});

test('what changes a COPY key and what does not', async () => {
  const { dir, context, digests } = await setup();
  const d = copyOf(['app']);
  const k0 = await key(context, digests, d);
  assert.is(await key(context, digests, d), k0, 'stable');
  fs.writeFileSync(path.join(dir, 'app', 'debug.log'), 'other log');
  assert.is(await key(context, digests, d), k0, 'an ignored file');
  fs.writeFileSync(path.join(dir, 'unrelated.txt'), 'x');
  assert.is(await key(context, digests, d), k0, 'a file outside the selection');
  const st = fs.statSync(path.join(dir, 'app', 'main.js'));
  fs.writeFileSync(path.join(dir, 'app', 'main.js'), 'MAIN');
  fs.utimesSync(path.join(dir, 'app', 'main.js'), st.atime, st.mtime);
  const k1 = await key(context, digests, d);
  assert.is.not(k1, k0, 'content (same size and mtime)');
  fs.chmodSync(path.join(dir, 'app', 'main.js'), 0o700);
  const k2 = await key(context, digests, d);
  assert.is.not(k2, k1, 'mode');
  fs.utimesSync(path.join(dir, 'app', 'main.js'), 1000, 1000);
  const k3 = await key(context, digests, d);
  assert.is.not(k3, k2, 'mtime without SOURCE_DATE_EPOCH');
  assert.is(await key(context, digests, d, 500), await key(context, digests, d, 500));
  const clampedBefore = await key(context, digests, d, 100);
  fs.utimesSync(path.join(dir, 'app', 'main.js'), 2000, 2000);
  assert.is(await key(context, digests, d, 100), clampedBefore, 'mtimes above SOURCE_DATE_EPOCH are clamped: a touch changes nothing');
  fs.rmSync(path.join(dir, 'app', 'index.js'));
  fs.symlinkSync('lib/u.js', path.join(dir, 'app', 'index.js'));
  assert.is.not(await key(context, digests, d, 100), clampedBefore, 'a symlink target');
  assert.is.not(await key(context, digests, copyOf(['app'], { chown: '1:1' })), await key(context, digests, d), '--chown');
});

test('ADD of a URL: no key without --checksum; with one, the checksum is the key; COPY --from keys by the stage', async () => {
  const { context, digests } = await setup();
  const add = (checksum?: string): Dispatched => ({ ...copyOf(['https://example.com/x.tgz']), resolved: { ...copyOf(['https://example.com/x.tgz']).resolved, kind: 'add', checksum } as Dispatched['resolved'] });
  assert.is(await key(context, digests, add()), undefined);
  const a = await key(context, digests, add(`sha256:${'a'.repeat(64)}`));
  const b = await key(context, digests, add(`sha256:${'b'.repeat(64)}`));
  assert.ok(a && b && a !== b);
  const from = (f: string) => copyOf(['/x'], { from: f });
  assert.is.not(await key(context, digests, from('one')), await key(context, digests, from('two')));
});

test('RUN keys: a context bind mount by its content; a secret by id, never by value', async () => {
  const { dir, context, digests } = await setup();
  const run = (mounts: object[]): Dispatched => ({
    resolved: { kind: 'run', args: ['true'], env: [], mounts: [], heredocs: [], parsedMounts: mounts } as unknown as Dispatched['resolved'],
    location: { file: 'Dockerfile', line: 3 },
    createdBy: 'RUN true # buildkit',
  });
  const bind = run([{ type: 'bind', source: 'app/lib', target: '/m', readOnly: true }]);
  const k0 = await key(context, digests, bind);
  fs.writeFileSync(path.join(dir, 'app', 'main.js'), 'not mounted');
  assert.is(await key(context, digests, bind), k0);
  fs.writeFileSync(path.join(dir, 'app', 'lib', 'u.js'), 'mounted, changed');
  assert.is.not(await key(context, digests, bind), k0);
  const secret = run([{ type: 'secret', id: 'tok', readOnly: true }]);
  const s0 = await key(context, digests, secret);
  assert.is(await key(context, digests, secret), s0);
  assert.is.not(await key(context, digests, run([{ type: 'secret', id: 'other', readOnly: true }])), s0);
});

test('what a step takes from the config: COPY the WorkingDir for a relative destination only, RUN the WorkingDir and User, WORKDIR the User, metadata nothing', async () => {
  const { context, digests } = await setup();
  const k = (d: Dispatched, config: ContainerConfig) => key(context, digests, d, undefined, config);
  const rel = copyOf(['app'], { dest: 'app/' });
  const abs = copyOf(['app']);
  assert.is.not(await k(rel, { WorkingDir: '/a' }), await k(rel, { WorkingDir: '/b' }), 'relative COPY: WorkingDir');
  assert.is(await k(rel, { WorkingDir: '/' }), await k(rel, {}), 'no WorkingDir is /');
  assert.is(await k(abs, { WorkingDir: '/a' }), await k(abs, { WorkingDir: '/b' }), 'absolute COPY: not the WorkingDir');
  assert.is(await k(rel, { User: 'a', Env: ['X=1'], Labels: { l: '1' } }), await k(rel, { User: 'b', Env: ['X=2'], Labels: { l: '2' } }), 'COPY: not USER, ENV, LABEL');
  const run: Dispatched = {
    resolved: { kind: 'run', args: ['/bin/sh', '-c', 'true'], env: ['PATH=/bin'], mounts: [], heredocs: [], parsedMounts: [] } as unknown as Dispatched['resolved'],
    location: { file: 'Dockerfile', line: 3 },
    createdBy: 'RUN true # buildkit',
  };
  assert.is.not(await k(run, { User: 'a' }), await k(run, { User: 'b' }), 'RUN: User');
  assert.is.not(await k(run, { WorkingDir: '/a' }), await k(run, { WorkingDir: '/b' }), 'RUN: WorkingDir');
  assert.is(await k(run, { Labels: { l: '1' }, Cmd: ['a'] }), await k(run, { Labels: { l: '2' }, Cmd: ['b'] }), 'RUN: not LABEL, CMD');
  const workdir: Dispatched = { resolved: { kind: 'workdir', path: '/w' }, location: { file: 'Dockerfile', line: 4 }, createdBy: 'WORKDIR /w' };
  assert.is.not(await k(workdir, { User: 'a' }), await k(workdir, { User: 'b' }), 'WORKDIR: User');
  assert.is(await k(workdir, { WorkingDir: '/a' }), await k(workdir, { WorkingDir: '/b' }), 'WORKDIR: its path is absolute');
  assert.not.equal(await key(context, digests, workdir, 1), await key(context, digests, workdir, 2), 'SOURCE_DATE_EPOCH');
  const label: Dispatched = { resolved: { kind: 'label', pairs: [['l', '1']] }, location: { file: 'Dockerfile', line: 5 }, createdBy: 'LABEL l=1' };
  assert.is(await k(label, { User: 'a' }), await k(label, { User: 'b', WorkingDir: '/x' }), 'a metadata step reads no config (its parent is the full key)');
  assert.equal(['copy', 'add', 'run', 'workdir', 'env', 'label', 'arg', 'user', 'cmd'].map((kind) => isFilesystemStep({ kind } as Dispatched['resolved'])), [true, true, true, true, false, false, false, false, false]);
});

test.run();
