/**
 * Word expansion beyond the conformance vectors: pattern operators
 * (#, ##, %, %%, /, //), escape token, option flags, words splitting.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { ShellLex, ShellLexError, expandWord, expandWords } from '../lib/dockerfile/index.js';

const env = { FILE: 'archive.tar.gz', PATHV: '/usr/local/bin', EMPTY: '', SP: 'a b  c', DOTS: 'a.b.c' };

test('${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p}', () => {
  assert.is(expandWord('${FILE#*.}', env), 'tar.gz');
  assert.is(expandWord('${FILE##*.}', env), 'gz');
  assert.is(expandWord('${FILE%.*}', env), 'archive.tar');
  assert.is(expandWord('${FILE%%.*}', env), 'archive');
  assert.is(expandWord('${PATHV#/usr}', env), '/local/bin');
  assert.is(expandWord('${FILE#nomatch}', env), 'archive.tar.gz');
  assert.is(expandWord('${FILE%?z}', env), 'archive.tar.');
});

test('${VAR/p/r} and ${VAR//p/r}', () => {
  assert.is(expandWord('${DOTS/./-}', env), 'a-b.c');
  assert.is(expandWord('${DOTS//./-}', env), 'a-b-c');
  assert.is(expandWord('${PATHV//\\//:}', env), ':usr:local:bin');
  assert.is(expandWord('${DOTS//x/y}', env), 'a.b.c');
  assert.is(expandWord('${UNSET//a/b}', env), '');
});

test('${VAR:-x} ${VAR-x} ${VAR:+x} ${VAR+x} on empty and unset', () => {
  assert.is(expandWord('${EMPTY:-d}', env), 'd');
  assert.is(expandWord('${EMPTY-d}', env), '');
  assert.is(expandWord('${UNSET-d}', env), 'd');
  assert.is(expandWord('${EMPTY:+s}', env), '');
  assert.is(expandWord('${EMPTY+s}', env), 's');
  assert.is(expandWord('${UNSET+s}', env), '');
});

test('${VAR:?msg} and ${VAR?msg} fail with the message', () => {
  assert.throws(() => expandWord('${UNSET:?set it}', env), (e: Error) => e instanceof ShellLexError && /UNSET: set it/.test(e.message));
  assert.throws(() => expandWord('${EMPTY:?}', env), /EMPTY: is not allowed to be empty/);
  assert.is(expandWord('${EMPTY?}', env), '');
});

test('unsupported modifiers and bad substitutions', () => {
  assert.throws(() => expandWord('${FILE:#x}', env), /unsupported modifier/);
  assert.throws(() => expandWord('${FILE=x}', env), /unsupported modifier/);
  assert.throws(() => expandWord('${FILE', env), /unsupported modifier/);
  assert.throws(() => expandWord('x${', env), /missing '}'/);
  assert.throws(() => expandWord('${FILE:-x', env), /missing '}'/);
});

test('backtick escape token', () => {
  assert.is(expandWord('a`$FILE', env, { escape: '`' }), 'a$FILE');
  assert.is(expandWord('c:\\dir', env, { escape: '`' }), 'c:\\dir');
  assert.is(expandWord('c:\\dir', env), 'c:dir');
});

test('words: splitting after expansion, quotes keep spaces', () => {
  assert.equal(expandWords('x $SP y', env), ['x', 'a', 'b', 'c', 'y']);
  assert.equal(expandWords('"$SP" \'$SP\'', env), ['a b  c', '$SP']);
});

test('options: rawQuotes, rawEscapes, skipUnsetEnv, skipProcessQuotes', () => {
  assert.is(new ShellLex({ rawQuotes: true }).processWord('"a" \'b\'', {}), '"a" \'b\'');
  assert.is(new ShellLex({ rawEscapes: true }).processWord('a\\ b', {}), 'a\\ b');
  assert.is(new ShellLex({ skipUnsetEnv: true }).processWord('$A ${B} ${C:-x} $FILE', env), '$A ${B} ${C:-x} archive.tar.gz');
  assert.is(new ShellLex({ skipProcessQuotes: true }).processWord('"$FILE" \'x\'', env), '"archive.tar.gz" \'x\'');
});

test('env as a KEY=value list, a Map (undefined = unset) or a record', () => {
  assert.is(expandWord('$A-$B', ['A=1', 'B=2', 'A=3']), '3-2');
  assert.is(expandWord('${A-unset}', new Map([['A', undefined]])), 'unset');
  assert.is(expandWord('$A', { A: 'r' }), 'r');
});

test('process reports matched and unmatched names', () => {
  const r = new ShellLex().process('$FILE $NOPE', env);
  assert.equal([...r.matched], ['FILE']);
  assert.equal([...r.unmatched], ['NOPE']);
});

test.run();
