/**
 * dispatch(): which words are expanded, state updates (ENV, ARG, WORKDIR,
 * SHELL, USER), ARG scoping and history lines in BuildKit's style.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { plan, newStageState, dispatch, parseOnbuildTriggers } from '../lib/dockerfile/index.js';
import type { Dispatched, StageState } from '../lib/dockerfile/types.js';
import { OcistackError } from '../lib/errors.js';

/** Plans `text` and dispatches every instruction of the target stage. */
function run(text: string, opts: { buildArgs?: Record<string, string>; env?: string[]; platform?: string } = {}): { out: Dispatched[]; state: StageState } {
  const p = plan(text, { buildArgs: opts.buildArgs, platform: opts.platform ?? 'linux/amd64' });
  const stage = p.stages[p.target]!;
  const state = newStageState({
    baseConfig: { Env: opts.env ?? ['PATH=/usr/bin:/bin'] },
    buildArgs: opts.buildArgs ?? {},
    globalArgs: p.globalArgs,
    platform: opts.platform ?? 'linux/amd64',
    stage,
  });
  return { out: stage.instructions.map((i) => dispatch(i, state)), state };
}

test('ENV expands with the base env and updates state in place', () => {
  const { out, state } = run('FROM a\nENV PATH=/opt/bin:$PATH A=1\nENV B=${A}2\n');
  assert.equal(out[0]!.resolved, { kind: 'env', pairs: [['PATH', '/opt/bin:/usr/bin:/bin'], ['A', '1']] });
  assert.is(out[0]!.createdBy, 'ENV PATH=/opt/bin:/usr/bin:/bin A=1');
  assert.is(out[1]!.createdBy, 'ENV B=12');
  assert.equal(state.env, ['PATH=/opt/bin:/usr/bin:/bin', 'A=1', 'B=12']);
});

test('ENV in one line expands against the env before the line', () => {
  const { out } = run('FROM a\nENV A=1\nENV A=2 B=$A\n');
  assert.equal(out[1]!.resolved, { kind: 'env', pairs: [['A', '2'], ['B', '1']] });
});

test('legacy ENV form keeps the rest of the line as the value', () => {
  const { out } = run('FROM a\nENV GREETING hello   world\n');
  assert.equal(out[0]!.resolved, { kind: 'env', pairs: [['GREETING', 'hello   world']] });
});

test('ARG: default, --build-arg wins, history line', () => {
  const { out, state } = run('FROM a\nARG A=1 B\nARG C=${A}x\n', { buildArgs: { B: 'b' } });
  assert.equal(out[0]!.resolved, { kind: 'arg', args: [{ name: 'A', value: '1' }, { name: 'B', value: 'b' }] });
  assert.is(out[0]!.createdBy, 'ARG A=1 B=b');
  assert.is(out[1]!.createdBy, 'ARG C=1x');
  assert.is(state.args.get('C'), '1x');
});

test('global ARGs are visible in a stage only when re-declared', () => {
  const { out } = run('ARG V=1\nFROM a\nLABEL before=$V\nARG V\nLABEL after=$V\n');
  assert.equal(out[0]!.resolved, { kind: 'label', pairs: [['before', '']] });
  assert.equal(out[2]!.resolved, { kind: 'label', pairs: [['after', '1']] });
});

test('ENV shadows an earlier ARG of the same name', () => {
  const { out } = run('FROM a\nARG X=fromarg\nENV X=fromenv\nLABEL x=$X\nRUN true\n');
  assert.equal(out[2]!.resolved, { kind: 'label', pairs: [['x', 'fromenv']] });
  const r = out[3]!.resolved;
  assert.ok(r.kind === 'run' && r.env.includes('X=fromenv') && !r.env.includes('X=fromarg'));
  assert.is(out[3]!.createdBy, 'RUN |1 X=fromenv /bin/sh -c true # buildkit');
});

test('an ARG with a value declared after an ENV (or the base image ENV) shadows it, as in BuildKit', () => {
  const { out, state } = run('FROM a\nARG HOME\nLABEL a=$HOME\nARG HOME=/arg\nLABEL b=$HOME\nRUN true\n', { env: ['PATH=/bin', 'HOME=/base'] });
  assert.equal(out[1]!.resolved, { kind: 'label', pairs: [['a', '/base']] }, 'ARG without a value does not shadow');
  assert.equal(out[3]!.resolved, { kind: 'label', pairs: [['b', '/arg']] });
  const r = out[4]!.resolved;
  assert.ok(r.kind === 'run' && r.env.includes('HOME=/arg') && !r.env.includes('HOME=/base'));
  assert.ok(state.env.includes('HOME=/base'), 'the image ENV itself is unchanged');
});

test('platform ARGs need an ARG line in a stage', () => {
  const { out } = run('FROM a\nLABEL a=$TARGETARCH\nARG TARGETARCH TARGETPLATFORM\nLABEL b=$TARGETARCH c=$TARGETPLATFORM\n', { platform: 'linux/arm64' });
  assert.equal(out[0]!.resolved, { kind: 'label', pairs: [['a', '']] });
  assert.equal(out[2]!.resolved, { kind: 'label', pairs: [['b', 'arm64'], ['c', 'linux/arm64']] });
});

test('WORKDIR is expanded and relative to the previous one', () => {
  const { out, state } = run('FROM a\nENV D=/srv\nWORKDIR $D\nWORKDIR app/\nWORKDIR ../x\n');
  assert.equal(out.slice(1).map((d) => d.createdBy), ['WORKDIR /srv', 'WORKDIR /srv/app', 'WORKDIR /srv/x']);
  assert.is(state.workdir, '/srv/x');
});

test('COPY expands sources, dest, --chown and --chmod but not --from', () => {
  const { out } = run('FROM a AS b\nFROM a\nARG U=1000 D=/dst\nCOPY --from=b --chown=$U:$U --chmod=0755 src/$U ${D}/ \n');
  const c = out[1]!;
  assert.is(c.resolved.kind, 'copy');
  if (c.resolved.kind === 'copy') {
    assert.equal(c.resolved.sources, ['src/1000']);
    assert.is(c.resolved.dest, '/dst/');
    assert.is(c.resolved.chown, '1000:1000');
    assert.is(c.resolved.chmod, '0755');
    assert.is(c.resolved.from, 'b');
  }
  assert.is(c.createdBy, 'COPY --chown=1000:1000 --chmod=0755 src/1000 /dst/ # buildkit');
});

test('COPY keeps flags it parsed: --link, --parents, --exclude', () => {
  const { out } = run('FROM a\nCOPY --link --parents --exclude=*.md --exclude=.git ./a ./b /dst/\n');
  const r = out[0]!.resolved;
  if (r.kind !== 'copy') throw new Error('not copy');
  assert.is(r.link, true);
  assert.is(r.parents, true);
  assert.equal(r.exclude, ['*.md', '.git']);
  assert.is(out[0]!.createdBy, 'COPY --parents ./a ./b /dst/ # buildkit');
});

test('ADD flags: --checksum expanded, --keep-git-dir, --unpack', () => {
  const { out } = run('FROM a\nARG SUM=sha256:abc\nADD --checksum=$SUM --keep-git-dir=true --unpack=false https://x/y.tgz /y\n');
  const r = out[1]!.resolved;
  if (r.kind !== 'add') throw new Error('not add');
  assert.is(r.checksum, 'sha256:abc');
  assert.is(r.keepGitDir, true);
  assert.is(r.unpack, false);
  assert.is(out[1]!.createdBy, 'ADD https://x/y.tgz /y # buildkit');
});

test('CMD and ENTRYPOINT: exec form as is, shell form through the shell; not expanded', () => {
  const { out } = run('FROM a\nCMD ["echo", "$HOME"]\nCMD echo $HOME\nENTRYPOINT ["/app"]\nSHELL ["/bin/bash", "-eu", "-c"]\nENTRYPOINT exec app\n');
  assert.equal(out[0]!.resolved, { kind: 'cmd', cmd: ['echo', '$HOME'] });
  assert.is(out[0]!.createdBy, 'CMD ["echo" "$HOME"]');
  assert.equal(out[1]!.resolved, { kind: 'cmd', cmd: ['/bin/sh', '-c', 'echo $HOME'] });
  assert.is(out[2]!.createdBy, 'ENTRYPOINT ["/app"]');
  assert.is(out[3]!.createdBy, 'SHELL [/bin/bash -eu -c]');
  assert.equal(out[4]!.resolved, { kind: 'entrypoint', entrypoint: ['/bin/bash', '-eu', '-c', 'exec app'] });
});

test('CMD [] clears', () => {
  const { out } = run('FROM a\nCMD []\n');
  assert.equal(out[0]!.resolved, { kind: 'cmd', cmd: [] });
  assert.is(out[0]!.createdBy, 'CMD []');
});

test('LABEL expands keys and values', () => {
  const { out } = run('FROM a\nARG V=1.2\nLABEL "org.v"="$V" app=x\n');
  assert.equal(out[1]!.resolved, { kind: 'label', pairs: [['org.v', '1.2'], ['app', 'x']] });
  assert.is(out[1]!.createdBy, 'LABEL org.v=1.2 app=x');
});

test('EXPOSE normalizes to port/proto and expands ranges (in BuildKit order: raw words sorted)', () => {
  const { out } = run('FROM a\nARG P=8080\nEXPOSE $P 53/UDP 7000-7002/tcp\n');
  assert.equal(out[1]!.resolved, { kind: 'expose', ports: ['8080/tcp', '53/udp', '7000/tcp', '7001/tcp', '7002/tcp'] });
  assert.is(out[1]!.createdBy, 'EXPOSE [8080/tcp 53/udp 7000/tcp 7001/tcp 7002/tcp]');
});

test('EXPOSE with a bad protocol fails at its line', () => {
  try {
    run('FROM a\nEXPOSE 80/http\n');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.match((e as OcistackError).message, /invalid proto: http/);
    assert.is((e as OcistackError).location?.line, 2);
  }
});

test('USER, VOLUME, STOPSIGNAL are expanded; MAINTAINER is not', () => {
  const { out, state } = run('FROM a\nARG U=app\nUSER $U:$U\nVOLUME ["/data/$U", "/logs"]\nSTOPSIGNAL SIG${U:+TERM}\nMAINTAINER $U\n');
  assert.is(out[1]!.createdBy, 'USER app:app');
  assert.is(state.user, 'app:app');
  assert.equal(out[2]!.resolved, { kind: 'volume', paths: ['/data/app', '/logs'] });
  assert.is(out[2]!.createdBy, 'VOLUME [/data/app /logs]');
  assert.is(out[3]!.createdBy, 'STOPSIGNAL SIGTERM');
  assert.is(out[4]!.createdBy, 'MAINTAINER $U');
});

test('STOPSIGNAL rejects an unknown signal', () => {
  assert.throws(() => run('FROM a\nSTOPSIGNAL SIGNOPE\n'), /Invalid signal: SIGNOPE/);
});

test('HEALTHCHECK: durations in nanoseconds, history like BuildKit', () => {
  const { out } = run('FROM a\nHEALTHCHECK --interval=5s --timeout=1m30s --retries=3 CMD curl -f http://x/\nHEALTHCHECK NONE\nHEALTHCHECK --start-period=500ms CMD ["/bin/check"]\n');
  assert.equal(out[0]!.resolved, {
    kind: 'healthcheck',
    healthcheck: { Test: ['CMD-SHELL', 'curl -f http://x/'], Interval: 5e9, Timeout: 90e9, StartPeriod: 0, StartInterval: 0, Retries: 3 },
  });
  assert.is(out[0]!.createdBy, 'HEALTHCHECK {Test:[CMD-SHELL curl -f http://x/] Interval:5s Timeout:1m30s StartPeriod:0s StartInterval:0s Retries:3}');
  assert.equal(out[1]!.resolved, { kind: 'healthcheck', healthcheck: { Test: ['NONE'] } });
  const r = out[2]!.resolved;
  if (r.kind !== 'healthcheck') throw new Error('kind');
  assert.equal(r.healthcheck.Test, ['CMD', '/bin/check']);
  assert.is(r.healthcheck.StartPeriod, 5e8);
});

test('RUN: shell form through the shell, not expanded, history with declared ARGs', () => {
  const { out } = run('FROM a\nARG V=1\nENV E=2\nRUN echo $V $E\nRUN ["ls", "$E"]\n', { buildArgs: { HTTP_PROXY: 'http://proxy:3128' } });
  const r = out[2]!.resolved;
  if (r.kind !== 'run') throw new Error('kind');
  assert.equal(r.args, ['/bin/sh', '-c', 'echo $V $E']);
  assert.ok(r.env.includes('V=1'));
  assert.ok(r.env.includes('E=2'));
  assert.ok(r.env.includes('HTTP_PROXY=http://proxy:3128'), 'proxy args reach RUN');
  assert.is(out[2]!.createdBy, 'RUN |1 V=1 /bin/sh -c echo $V $E # buildkit');
  assert.not.match(out[2]!.createdBy, /proxy/);
  assert.is(out[3]!.createdBy, 'RUN |1 V=1 ls $E # buildkit');
});

test('RUN flags: --mount expanded, --network and --security kept', () => {
  const { out } = run('FROM a\nARG C=/root/.cache\nRUN --mount=type=cache,target=$C --network=none --security=sandbox make\n');
  const r = out[1]!.resolved;
  if (r.kind !== 'run') throw new Error('kind');
  assert.equal(r.mounts, ['type=cache,target=/root/.cache']);
  assert.is(r.network, 'none');
  assert.is(r.security, 'sandbox');
});

test('expansion errors name the line', () => {
  try {
    run('FROM a\n\nENV A="${B:?B must be set}"\n');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, OcistackError);
    assert.match((e as OcistackError).message, /B must be set/);
    assert.is((e as OcistackError).location?.line, 3);
  }
});

test('PATH is added when the base image has none', () => {
  const p = plan('FROM scratch\nENV A=$PATH\n');
  const state = newStageState({ baseConfig: {}, stage: p.stages[0]! });
  const d = dispatch(p.stages[0]!.instructions[0]!, state);
  assert.equal(d.resolved, { kind: 'env', pairs: [['A', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']] });
});

test('newStageState reads workdir, user and shell from a full image config', () => {
  const state = newStageState({
    baseConfig: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { WorkingDir: '/w', User: 'u', Shell: ['/bin/bash', '-c'], Env: ['X=1'] } },
  });
  assert.is(state.workdir, '/w');
  assert.is(state.user, 'u');
  assert.equal(state.shell, ['/bin/bash', '-c']);
  assert.equal(state.env[0], 'X=1');
});

test('ONBUILD: trigger stored, no history; triggers parse back into instructions', () => {
  const { out } = run('FROM a\nONBUILD COPY . /app\nONBUILD RUN echo hi\n');
  assert.equal(out[0]!.resolved, { kind: 'onbuild', trigger: 'COPY . /app' });
  assert.is(out[0]!.noHistory, true);
  const ins = parseOnbuildTriggers(['COPY . /app', 'RUN echo hi'], { file: 'base (ONBUILD)', location: { file: 'Dockerfile', line: 1 } });
  assert.equal(ins.map((i) => i.kind), ['copy', 'run']);
  assert.equal(ins[0]!.location, { file: 'Dockerfile', line: 1 });
});

test('ONBUILD ONBUILD and ONBUILD FROM are rejected', () => {
  assert.throws(() => plan('FROM a\nONBUILD ONBUILD RUN x\n'), /Chaining ONBUILD/);
  assert.throws(() => plan('FROM a\nONBUILD FROM b\n'), /FROM isn't allowed as an ONBUILD trigger/);
});

test.run();
