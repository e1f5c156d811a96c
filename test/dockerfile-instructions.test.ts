/**
 * Instruction-level checks (argument counts, flags, forms) and RUN --mount
 * parsing: every error names file:line, the offending text and a hint.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { plan, parseMount, MountError, newStageState, dispatch } from '../lib/dockerfile/index.js';
import { OcistackError } from '../lib/errors.js';

function fails(body: string, pattern: RegExp): OcistackError {
  try {
    plan(`FROM a\n${body}\n`, { file: 'Dockerfile' });
  } catch (e) {
    assert.instance(e, OcistackError);
    const err = e as OcistackError;
    assert.match(err.message, pattern);
    assert.is(err.location?.line, 2, `line of: ${err.format()}`);
    assert.ok(err.hint, `hint for: ${err.message}`);
    return err;
  }
  throw new Error(`no error for ${body}`);
}

test('argument counts', () => {
  fails('ARG', /ARG requires at least one argument/);
  fails('ARG =x', /ARG names can not be blank/);
  fails('LABEL =x', /LABEL names can not be blank/);
  fails('EXPOSE', /EXPOSE requires at least one argument/);
  fails('USER', /USER requires exactly one argument/);
  fails('WORKDIR', /WORKDIR requires exactly one argument/);
  fails('STOPSIGNAL', /STOPSIGNAL requires exactly one argument/);
  fails('MAINTAINER', /MAINTAINER requires exactly one argument/);
  fails('VOLUME [""]', /VOLUME specified can not be an empty string/);
  fails('VOLUME', /VOLUME requires at least one argument/);
  fails('ONBUILD', /ONBUILD requires at least one argument/);
  fails('COPY onlyone', /COPY requires at least two arguments/);
  fails('ADD onlyone', /ADD requires at least two arguments/);
});

test('SHELL must be a non-empty JSON array', () => {
  fails('SHELL /bin/bash -c', /SHELL requires the arguments to be in JSON form/);
  fails('SHELL []', /SHELL requires at least one argument/);
});

test('HEALTHCHECK forms and options', () => {
  fails('HEALTHCHECK NONE extra', /HEALTHCHECK NONE takes no arguments/);
  fails('HEALTHCHECK CMD', /Missing command after HEALTHCHECK CMD/);
  fails('HEALTHCHECK CONNECT TCP 7000', /Unknown type "CONNECT" in HEALTHCHECK/);
  fails('HEALTHCHECK --retries=-1 CMD x', /--retries cannot be negative/);
  fails('HEALTHCHECK --retries=two CMD x', /invalid syntax/);
  fails('HEALTHCHECK --interval=500us CMD x', /cannot be less than 1ms/);
  fails('HEALTHCHECK --interval=5 CMD x', /missing unit/);
  fails('HEALTHCHECK --timout=5s CMD x', /unknown flag: --timout/);
});

test('flag rules: duplicates, values, booleans, flags of another instruction', () => {
  fails('COPY --from=a --from=b x y', /duplicate flag specified: --from/);
  fails('COPY --chown x y', /missing a value on flag: --chown/);
  fails('COPY --link= x y', /missing a value on flag: --link/);
  fails('COPY --keep-git-dir x y', /unknown flag: --keep-git-dir/);
  fails('ADD --parents x y', /unknown flag: --parents/);
  fails('WORKDIR --x /a', /unknown flag: --x/);
  fails('RUN --network=bridge x', /unsupported network mode: bridge/);
  fails('RUN --security=privileged x', /unsupported security mode privileged/);
  const e = fails('COPY --chonw=1 a b', /unknown flag: --chonw/);
  assert.match(e.hint!, /did you mean --chown/);
  assert.is(e.location?.column, 6, 'points at the flag');
  assert.match(e.message, /COPY --chonw=1 a b/, 'shows the offending text');
});

test('repeatable flags collect values', () => {
  const p = plan('FROM a\nRUN --mount=type=tmpfs,target=/t --mount=type=cache,target=/c x\nCOPY --exclude=a --exclude=b . /\n');
  const [run, copy] = p.stages[0]!.instructions;
  assert.equal(run!.kind === 'run' && run.mounts, ['type=tmpfs,target=/t', 'type=cache,target=/c']);
  assert.equal(copy!.kind === 'copy' && copy.exclude, ['a', 'b']);
});

test('COPY heredoc as destination is an error; heredoc sources are split off', () => {
  fails('COPY a <<EOF\nx\nEOF', /COPY cannot accept a heredoc as a destination/);
  const p = plan('FROM a\nCOPY --chmod=0644 <<-one.txt two.txt /dst/\n\thello\n\tone.txt\n');
  const c = p.stages[0]!.instructions[0]!;
  if (c.kind !== 'copy') throw new Error('kind');
  assert.equal(c.sources, ['two.txt']);
  assert.equal(c.heredocs, [{ name: 'one.txt', content: 'hello\n', expand: true, chomp: true }]);
});

test('COPY heredoc body is expanded at dispatch unless the delimiter is quoted', () => {
  const p = plan('FROM a\nARG N=world\nCOPY <<A <<"B" /d/\nhi $N\nA\nraw $N\nB\n');
  const st = newStageState({ stage: p.stages[0]! });
  dispatch(p.stages[0]!.instructions[0]!, st);
  const d = dispatch(p.stages[0]!.instructions[1]!, st);
  if (d.resolved.kind !== 'copy') throw new Error('kind');
  assert.equal(d.resolved.heredocs.map((h) => h.content), ['hi world\n', 'raw $N\n']);
  assert.is(d.createdBy, 'COPY <<A <<B /d/ # buildkit');
});

test('RUN heredocs are kept as written for the shell (not expanded)', () => {
  const p = plan('FROM a\nRUN <<-EOF sh\n\techo $HOME\nEOF\n');
  const r = p.stages[0]!.instructions[0]!;
  if (r.kind !== 'run') throw new Error('kind');
  assert.equal(r.args, ['<<-EOF sh']);
  assert.equal(r.heredocs, [{ name: 'EOF', content: '\techo $HOME\n', expand: true, chomp: true }]);
});

test('RUN heredoc commands as BuildKit runs them', () => {
  const run = (text: string) => {
    const p = plan(`FROM a\n${text}`);
    const d = dispatch(p.stages[0]!.instructions[0]!, newStageState({ stage: p.stages[0]! }));
    if (d.resolved.kind !== 'run') throw new Error('kind');
    return { r: d.resolved, createdBy: d.createdBy };
  };
  // only a heredoc: its (chomped) body goes to the shell
  const a = run('RUN <<-EOF\n\techo one\n\techo two\nEOF\n');
  assert.equal(a.r.args, ['/bin/sh', '-c', 'echo one\necho two\n']);
  assert.is(a.createdBy, 'RUN /bin/sh -c echo one\necho two\n # buildkit');
  // a script with a shebang is mounted and executed
  const b = run('RUN <<PY\n#!/usr/bin/env python3\nprint(1)\nPY\n');
  assert.equal(b.r.args, ['/bin/sh', '-c', '/dev/pipes/PY']);
  assert.equal(b.r.inlineFiles, [{ path: '/dev/pipes/PY', content: '#!/usr/bin/env python3\nprint(1)\n', mode: 0o755 }]);
  // anything else: the shell gets the bodies appended
  const c = run('RUN cat <<A > /a\nhello\nA\n');
  assert.equal(c.r.args, ['/bin/sh', '-c', 'cat <<A > /a\nhello\nA']);
});

test('parseMount: defaults and fields', () => {
  assert.equal(parseMount('target=/src'), { type: 'bind', readOnly: true, target: '/src' });
  assert.equal(parseMount('type=cache,target=/root/.cache,id=go,sharing=locked,mode=0700,uid=1,gid=2'),
    { type: 'cache', readOnly: false, target: '/root/.cache', id: 'go', sharing: 'locked', mode: 0o700, uid: 1, gid: 2 });
  assert.equal(parseMount('type=tmpfs,dst=/t,size=64m'), { type: 'tmpfs', readOnly: false, target: '/t', sizeLimit: 64 * 1024 * 1024 });
  assert.equal(parseMount('type=secret,id=tok,env=TOKEN,required'), { type: 'secret', readOnly: true, id: 'tok', env: 'TOKEN', required: true });
  assert.equal(parseMount('type=bind,from=build,source=/out,rw'), { type: 'bind', readOnly: false, from: 'build', source: '/out' });
  assert.equal(parseMount('"target=/a,b",type=bind'), { type: 'bind', readOnly: true, target: '/a,b' });
});

test('parseMount: errors', () => {
  const bad: [string, RegExp][] = [
    ['type=volume', /unsupported mount type "volume"/],
    ['type=bind,mode=0755', /mode not allowed for "bind" type mounts/],
    ['type=cache,size=1g', /unexpected key 'size' for mount type 'cache'/],
    ['type=secret,from=x,id=y', /secret mount should not have a from/],
    ['type=secret', /one of source, target required/],
    ['type=bind,sharing=shared', /invalid cache sharing set for bind mount/],
    ['type=cache,sharing=all', /unsupported sharing value "all"/],
    ['tagret=/x', /unexpected key 'tagret'/],
    ['type=bind,ro=maybe', /invalid value for ro: maybe/],
    ['from=$STAGE', /doesn't support variable expansion/],
    ['justaword', /must be a key=value pair/],
    ['target="/a', /bad quoting/],
  ];
  for (const [spec, re] of bad) {
    assert.throws(() => parseMount(spec, (v) => v), (e: Error) => e instanceof MountError && re.test(e.message), spec);
  }
});

test('--mount values with variables are checked at dispatch, each value expanded on its own', () => {
  const p = plan('FROM a\nARG T=cache D="/x,y"\nRUN --mount=type=$T,target=$D make\n');
  const st = newStageState({ stage: p.stages[0]! });
  dispatch(p.stages[0]!.instructions[0]!, st);
  const d = dispatch(p.stages[0]!.instructions[1]!, st);
  if (d.resolved.kind !== 'run') throw new Error('kind');
  assert.equal(d.resolved.parsedMounts, [{ type: 'cache', readOnly: false, target: '/x,y' }]);
  assert.equal(d.resolved.mounts, ['type=cache,"target=/x,y"']);
  const p2 = plan('FROM a\nARG T=volume\nRUN --mount=type=$T,target=/x make\n');
  const st2 = newStageState({ stage: p2.stages[0]! });
  dispatch(p2.stages[0]!.instructions[0]!, st2);
  assert.throws(() => dispatch(p2.stages[0]!.instructions[1]!, st2), /unsupported mount type "volume"/);
});

test.run();
