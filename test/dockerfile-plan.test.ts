/**
 * plan(): stages, global ARG scoping, FROM expansion, the stage graph,
 * --target pruning and the errors for bad graphs.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { plan } from '../lib/dockerfile/index.js';
import { OcistackError } from '../lib/errors.js';

function planError(text: string, opts: Parameters<typeof plan>[1] = {}): OcistackError {
  try {
    plan(text, opts);
  } catch (e) {
    assert.instance(e, OcistackError);
    return e as OcistackError;
  }
  throw new Error('plan did not fail');
}

test('FROM image, scratch and an earlier stage', () => {
  const p = plan('FROM alpine:3.19 AS Base\nRUN true\nFROM scratch\nCOPY a /a\nFROM base\n');
  assert.equal(p.stages.length, 3);
  assert.equal(p.stages[0]!.base, { kind: 'image', ref: 'alpine:3.19' });
  assert.is(p.stages[0]!.name, 'base');
  assert.equal(p.stages[1]!.base, { kind: 'scratch' });
  assert.equal(p.stages[2]!.base, { kind: 'stage', index: 0 });
  assert.equal(p.stages[2]!.dependsOn, [0]);
  assert.is(p.target, 2);
  assert.equal(p.order, [0, 2]);
});

test('global ARG expands FROM; --build-arg overrides the default', () => {
  const text = 'ARG BASE=alpine\nARG TAG=3.19\nFROM ${BASE}:${TAG}\n';
  assert.is(plan(text).stages[0]!.baseName, 'alpine:3.19');
  assert.is(plan(text, { buildArgs: { TAG: 'edge' } }).stages[0]!.baseName, 'alpine:edge');
  assert.equal(plan(text, { buildArgs: { TAG: 'edge' } }).globalArgs, { BASE: 'alpine', TAG: 'edge' });
});

test('a global ARG default may use an earlier global ARG', () => {
  const p = plan('ARG A=x\nARG B=${A}y\nFROM img:$B\n');
  assert.is(p.stages[0]!.baseName, 'img:xy');
});

test('automatic platform ARGs are usable in FROM', () => {
  const p = plan('FROM --platform=$BUILDPLATFORM img-$TARGETARCH\n', { platform: 'linux/arm64' });
  assert.is(p.stages[0]!.baseName, 'img-arm64');
  assert.ok(p.stages[0]!.platform);
});

test('FROM --platform must expand to OS/ARCH[/VARIANT]', () => {
  assert.match(planError('ARG P\nFROM --platform=$P a\n').message, /empty platform value/);
  assert.match(planError('FROM --platform=linux/amd64/v2/x a\n').message, /failed to parse platform/);
  assert.is(plan('FROM --platform=linux/arm/v7 a\n').stages[0]!.platform, 'linux/arm/v7');
});

test('FROM that expands to nothing is an error with the FROM line', () => {
  const e = planError('ARG BASE\nFROM $BASE\n');
  assert.match(e.message, /base name \(\$BASE\) should not be blank/);
  assert.is(e.location?.line, 2);
  assert.ok(e.hint);
});

test('COPY --from by name and by index adds edges; unknown names are images', () => {
  const p = plan('FROM a AS one\nFROM b AS two\nFROM c\nCOPY --from=one /x /x\nCOPY --from=1 /y /y\nCOPY --from=busybox /bin/sh /sh\n');
  assert.equal(p.stages[2]!.dependsOn, [0, 1]);
  assert.equal(p.order, [0, 1, 2]);
});

test('RUN --mount from= adds an edge', () => {
  const p = plan('FROM a AS tools\nFROM b\nRUN --mount=type=bind,from=tools,target=/t true\n');
  assert.equal(p.stages[1]!.dependsOn, [0]);
});

test('--target picks a stage and prunes what it does not need', () => {
  const text = 'FROM a AS deps\nFROM b AS build\nCOPY --from=deps / /\nFROM c AS test\nFROM d AS final\nCOPY --from=build / /\n';
  const p = plan(text, { target: 'build' });
  assert.is(p.target, 1);
  assert.equal(p.order, [0, 1]);
  const all = plan(text);
  assert.equal(all.order, [0, 1, 3]);
});

test('unknown --target suggests the closest stage', () => {
  const e = planError('FROM a AS build\nFROM b AS final\n', { target: 'biuld' });
  assert.is(e.code, 'DOCKERFILE_STAGE');
  assert.match(e.message, /target stage "biuld" could not be found/);
  assert.match(e.hint!, /build/);
});

test('duplicate stage names are an error naming both lines', () => {
  const e = planError('FROM a AS x\nFROM b AS X\n');
  assert.match(e.message, /duplicate stage name "x"/);
  assert.is(e.location?.line, 2);
  assert.match(e.hint!, /line 1/);
});

test('COPY --from a later stage (a cycle) is an error', () => {
  const e = planError('FROM a AS one\nCOPY --from=two / /\nFROM b AS two\nCOPY --from=one / /\n');
  assert.match(e.message, /needs to be defined before current stage/);
  assert.is(e.location?.line, 2);
});

test('COPY --from with a variable is rejected like BuildKit', () => {
  const e = planError('FROM a\nARG S=x\nCOPY --from=$S / /\n');
  assert.match(e.message, /variable expansion is not supported for --from/);
});

test('invalid stage index', () => {
  const e = planError('FROM a\nCOPY --from=5 / /\n');
  assert.match(e.message, /invalid stage index 5/);
});

test('instructions before FROM other than ARG are errors', () => {
  const e = planError('ENV A=1\nFROM a\n');
  assert.match(e.message, /no build stage in current context/);
  assert.is(e.location?.line, 1);
});

test('unknown instruction suggests the closest one', () => {
  const e = planError('FROM a\nCOPPY a b\n');
  assert.is(e.code, 'DOCKERFILE_SYNTAX');
  assert.match(e.message, /unknown instruction: COPPY/);
  assert.match(e.hint!, /COPY/);
  assert.equal(e.location, { file: 'Dockerfile', line: 2, column: 1 });
});

test('unknown flag lists the valid ones', () => {
  const e = planError('FROM a\nCOPY --form=x a b\n', { file: 'app.Dockerfile' });
  assert.match(e.message, /unknown flag: --form/);
  assert.match(e.hint!, /--from/);
  assert.match(e.hint!, /--chown/);
  assert.is(e.location?.file, 'app.Dockerfile');
});

test('a --build-arg no stage declares gives a warning; proxy args do not', () => {
  const p = plan('ARG USED\nFROM a\nARG INSTAGE\n', { buildArgs: { USED: '1', INSTAGE: '2', NOPE: '3', HTTP_PROXY: 'http://p' } });
  const msgs = p.warnings.map((w) => w.message).join('\n');
  assert.match(msgs, /NOPE/);
  assert.not.match(msgs, /USED|INSTAGE|HTTP_PROXY/);
});

test('ARG only in a pruned stage does not count as consumed', () => {
  const p = plan('FROM a AS other\nARG X\nFROM b\n', { buildArgs: { X: '1' } });
  assert.match(p.warnings.map((w) => w.message).join('\n'), /\[X\]/);
});

test('stage instructions are typed and unexpanded', () => {
  const p = plan('FROM a\nENV P=$PATH:/x\nCOPY --chown=$U src/ /dst/\n');
  const [env, copy] = p.stages[0]!.instructions;
  assert.equal(env, { kind: 'env', pairs: [{ key: 'P', value: '$PATH:/x' }], location: { file: 'Dockerfile', line: 2, column: 1 }, original: 'ENV P=$PATH:/x' });
  assert.is(copy!.kind, 'copy');
  if (copy!.kind === 'copy') {
    assert.equal(copy.sources, ['src/']);
    assert.is(copy.dest, '/dst/');
    assert.is(copy.chown, '$U');
  }
});

test('escape directive carries into the plan', () => {
  const p = plan('# escape=`\nFROM a\nRUN echo `\n  hi\n');
  assert.is(p.escape, '`');
  assert.is(p.stages[0]!.escape, '`');
});

test.run();
