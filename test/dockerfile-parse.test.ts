/**
 * parseDockerfile() and dumpAst(): every instruction's argument splitting,
 * parser directives, continuations, heredocs, BOM/CRLF, and syntax errors.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { parseDockerfile, dumpAst } from '../lib/dockerfile/index.js';
import { OcistackError } from '../lib/errors.js';

const dump = (text: string) => dumpAst(parseDockerfile(text));

function parseError(text: string): OcistackError {
  try {
    parseDockerfile(text, { file: 'df' });
  } catch (e) {
    assert.instance(e, OcistackError);
    return e as OcistackError;
  }
  throw new Error('parse did not fail');
}

test('FROM with --platform and AS', () => {
  assert.is(dump('FROM --platform=linux/arm64 alpine:3 AS build\n'), '(from ["--platform=linux/arm64"] "alpine:3" "AS" "build")\n');
});

test('RUN shell form, exec form, flags', () => {
  assert.is(dump('FROM a\nRUN --mount=type=cache,target=/c --network=none make all\n').split('\n')[1],
    '(run ["--mount=type=cache,target=/c" "--network=none"] "make all")');
  assert.is(dump('FROM a\nRUN ["sh", "-c", "echo"]\n').split('\n')[1], '(run "sh" "-c" "echo")');
});

test('quoted flags lose their quotes like BuildKit', () => {
  assert.is(dump('FROM a\nCOPY --chown="1:1" a b\n').split('\n')[1], '(copy ["--chown=1:1"] "a" "b")');
});

test('-- ends the flags', () => {
  assert.is(dump('FROM a\nRUN --network=none -- --not-a-flag\n').split('\n')[1], '(run ["--network=none"] "--not-a-flag")');
});

test('CMD/ENTRYPOINT: exec, shell, invalid JSON falls back to shell with a warning', () => {
  const ast = parseDockerfile('FROM a\nCMD ["a", "b"]\nENTRYPOINT exec x\nCMD [\'single\']\n');
  assert.is(dumpAst(ast), '(from "a")\n(cmd "a" "b")\n(entrypoint "exec x")\n(cmd "[\'single\']")\n');
  assert.is(ast.instructions[1]!.json, true);
  assert.is(ast.warnings.length, 1);
  assert.is(ast.warnings[0]!.location?.line, 4);
  assert.match(ast.warnings[0]!.message, /not a valid JSON array/);
});

test('ENV and LABEL: key=value triples and the legacy space form', () => {
  assert.is(dump('FROM a\nENV A=1 B="two words" C=\nENV D  the rest  here\n'),
    '(from "a")\n(env "A" "1" "=" "B" "\\"two words\\"" "=" "C" "" "=")\n(env "D" "the rest  here" "")\n');
  assert.is(dump('FROM a\nLABEL "com.x"="y z" v=1\n').split('\n')[1], '(label "\\"com.x\\"" "\\"y z\\"" "=" "v" "1" "=")');
});

test('ARG: several per line, quotes kept', () => {
  assert.is(dump('ARG A B=1 C="x y"\nFROM a\n').split('\n')[0], '(arg "A" "B=1" "C=\\"x y\\"")');
});

test('EXPOSE, VOLUME (JSON and plain), USER, WORKDIR, STOPSIGNAL, MAINTAINER, SHELL', () => {
  const text = 'FROM a\nEXPOSE 80/tcp 53/udp\nVOLUME ["/a", "/b"]\nVOLUME /c /d\nUSER app:app\nWORKDIR /w x\nSTOPSIGNAL SIGINT\nMAINTAINER Me <me@x>\nSHELL ["/bin/bash", "-c"]\n';
  assert.is(dump(text), [
    '(from "a")', '(expose "80/tcp" "53/udp")', '(volume "/a" "/b")', '(volume "/c" "/d")', '(user "app:app")',
    '(workdir "/w x")', '(stopsignal "SIGINT")', '(maintainer "Me <me@x>")', '(shell "/bin/bash" "-c")', '',
  ].join('\n'));
});

test('HEALTHCHECK forms', () => {
  assert.is(dump('FROM a\nHEALTHCHECK NONE\nHEALTHCHECK --retries=2 CMD ["x"]\n'), '(from "a")\n(healthcheck "NONE")\n(healthcheck ["--retries=2"] "CMD" "x")\n');
});

test('ONBUILD nests its trigger', () => {
  assert.is(dump('FROM a\nONBUILD COPY --chown=1 . /x\n').split('\n')[1], '(onbuild (copy ["--chown=1"] "." "/x"))');
});

test('ADD/COPY JSON form keeps spaces in names', () => {
  assert.is(dump('FROM a\nCOPY ["a b", "/c d/"]\n').split('\n')[1], '(copy "a b" "/c d/")');
});

test('keywords are case-insensitive', () => {
  assert.is(dump('from a\nRuN x\n'), '(from "a")\n(run "x")\n');
});

test('continuations: comments and blank lines inside are dropped, blank ones warn', () => {
  const ast = parseDockerfile('FROM a\nRUN a \\\n# comment\n  b \\\n\n  c\n');
  assert.is(dumpAst(ast).split('\n')[1], '(run "a   b   c")');
  assert.is(ast.instructions[1]!.location.line, 2);
  assert.is(ast.instructions[1]!.endLine, 6);
  assert.is(ast.warnings.length, 1);
  assert.match(ast.warnings[0]!.message, /Empty continuation line/);
});

test('escape directive: backtick', () => {
  const ast = parseDockerfile('# escape=`\nFROM a\nRUN dir c:\\ `\n  /s\n');
  assert.is(ast.directives.escape, '`');
  assert.is(dumpAst(ast).split('\n')[1], '(run "dir c:\\\\   /s")');
});

test('syntax and check directives are read; a repeated directive is an error', () => {
  const ast = parseDockerfile('# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n');
  assert.is(ast.directives.syntax, 'docker/dockerfile:1');
  assert.is(ast.directives.check, 'skip=all');
  const e = parseError('# escape=\\\n# escape=`\nFROM a\n');
  assert.match(e.message, /only one escape parser directive/);
  assert.is(e.location?.line, 2);
});

test('directives after a comment or instruction are plain comments', () => {
  assert.is(parseDockerfile('# hello\n# escape=`\nFROM a\n').directives.escape, '\\');
  assert.is(parseDockerfile('FROM a\n# escape=`\n').directives.escape, '\\');
});

test('invalid escape token', () => {
  assert.match(parseError('# escape=x\nFROM a\n').message, /invalid escape token/);
});

test('BOM and CRLF', () => {
  assert.is(dump('\ufeffFROM a\r\nRUN x \\\r\n  y\r\n'), '(from "a")\n(run "x   y")\n');
});

test('heredocs: RUN, several per instruction, <<- chomp, quoted delimiter, COPY <<EOF /file', () => {
  const ast = parseDockerfile('FROM a\nRUN <<A <<-"B"\nline $X\nA\n\tb\n\tB\nCOPY <<EOF /etc/conf\nk=v\nEOF\nRUN after\n');
  const [, run, copy, after] = ast.instructions;
  assert.equal(run!.heredocs, [
    { name: 'A', content: 'line $X\n', expand: true, chomp: false },
    { name: 'B', content: '\tb\n', expand: false, chomp: true },
  ]);
  assert.is(run!.endLine, 6);
  assert.equal(copy!.heredocs, [{ name: 'EOF', content: 'k=v\n', expand: true, chomp: false }]);
  assert.is(after!.location.line, 10);
  assert.is(dumpAst(ast).split('\n')[1], '(run "<<A <<-\\"B\\"")');
});

test('heredoc-looking text in JSON form or in other instructions is not a heredoc', () => {
  const ast = parseDockerfile('FROM a\nRUN ["<<EOF"]\nLABEL x=<<EOF\n');
  assert.equal(ast.instructions[1]!.heredocs, []);
  assert.equal(ast.instructions[2]!.heredocs, []);
});

test('unterminated heredoc says where it started', () => {
  const e = parseError('FROM a\nRUN <<EOF\necho hi\n');
  assert.match(e.message, /unterminated heredoc/);
  assert.equal(e.location, { file: 'df', line: 2, column: 1 });
  assert.match(e.hint!, /line 2/);
});

test('JSON arrays must hold strings', () => {
  const e = parseError('FROM a\nCMD ["a", 1]\n');
  assert.match(e.message, /must be comprised of strings only/);
  assert.match(e.message, /CMD \["a", 1\]/, 'names the offending text');
  assert.is(e.location?.line, 2);
});

test('ENV without value and ENV with a word lacking =', () => {
  assert.match(parseError('FROM a\nENV A\n').message, /ENV must have two arguments/);
  assert.match(parseError('FROM a\nENV A=1 B\n').message, /can't find = in "B"/);
});

test('empty file and comment-only file have no instructions', () => {
  assert.match(parseError('').message, /file with no instructions/);
  assert.match(parseError('# just\n# comments\n').message, /file with no instructions/);
});

test('unknown instructions are kept by the parser (plan rejects them)', () => {
  assert.is(dump('FROM a\nFOO bar\n').split('\n')[1], '(foo "")');
});

test('locations carry line and column', () => {
  const ast = parseDockerfile('FROM a\n\n   RUN x\n', { file: 'x/Dockerfile' });
  assert.equal(ast.instructions[1]!.location, { file: 'x/Dockerfile', line: 3, column: 4 });
});

test('Go quoting in the dump: control characters, unicode', () => {
  assert.is(dump('FROM a\nCMD ["\\u0000\\u007f", "♥", "\\u00a0"]\n').split('\n')[1], '(cmd "\\x00\\x7f" "♥" "\\u00a0")');
});

test.run();
