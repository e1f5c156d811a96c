/**
 * test/differential-util.ts on real files (as root: mknod, setfattr): what
 * the differential suite compares, and that an accepted difference covers
 * only the listed fields of the listed path.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compareTrees, listTree, parseAccepted, unaccepted } from './differential-util.js';
import { makeTempDir, requireTool } from './helpers/tools.js';

/** Two trees that differ only by what `change` does to the second. */
function pair(make: (root: string) => void, change: (root: string) => void): { a: Map<string, string>; b: Map<string, string> } {
  const ra = makeTempDir('tree-a');
  const rb = makeTempDir('tree-b');
  make(ra);
  make(rb);
  change(rb);
  return { a: listTree(ra), b: listTree(rb) };
}

function base(root: string): void {
  fs.mkdirSync(path.join(root, 'd'));
  fs.writeFileSync(path.join(root, 'd', 'one'), 'x');
  fs.writeFileSync(path.join(root, 'd', 'two'), 'x');
  fs.writeFileSync(path.join(root, 'd', 'three'), 'x');
  fs.writeFileSync(path.join(root, 'name with space'), 'y');
  fs.symlinkSync('d/one', path.join(root, 'link'));
}

test('hard links: the group of paths on one inode is compared, not only the count', () => {
  // Same link counts on both sides (2, 2, 1), different partners: one=two vs one=three.
  const { a, b } = pair(
    (r) => base(r),
    () => undefined,
  );
  const ra = makeTempDir('links-a');
  const rb = makeTempDir('links-b');
  base(ra);
  base(rb);
  fs.rmSync(path.join(ra, 'd', 'two'));
  fs.linkSync(path.join(ra, 'd', 'one'), path.join(ra, 'd', 'two'));
  fs.rmSync(path.join(rb, 'd', 'three'));
  fs.linkSync(path.join(rb, 'd', 'one'), path.join(rb, 'd', 'three'));
  fs.rmSync(path.join(rb, 'd', 'two'));
  fs.writeFileSync(path.join(rb, 'd', 'two'), 'x');
  fs.linkSync(path.join(rb, 'd', 'two'), path.join(rb, 'extra'));
  fs.linkSync(path.join(ra, 'd', 'three'), path.join(ra, 'extra'));
  const ta = listTree(ra);
  const tb = listTree(rb);
  assert.match(ta.get('/d/one')!, / links=2 hardlinks=\/d\/one,\/d\/two$/);
  assert.match(tb.get('/d/one')!, / links=2 hardlinks=\/d\/one,\/d\/three$/);
  const diffs = compareTrees(ta, tb);
  assert.equal(diffs.map((d) => [d.path, d.fields]), [
    ['/d/one', ['hardlinks']],
    ['/d/three', ['hardlinks']],
    ['/d/two', ['hardlinks']],
    ['/extra', ['hardlinks']],
  ]);
  assert.equal(compareTrees(a, b), [], 'identical trees compare equal');
});

test('devices by type and major/minor, FIFOs by type', () => {
  const ra = makeTempDir('dev-a');
  const rb = makeTempDir('dev-b');
  for (const [r, minor] of [[ra, '3'], [rb, '5']] as const) {
    execFileSync('mknod', ['-m', '0666', path.join(r, 'null'), 'c', '1', minor]);
    execFileSync('mknod', ['-m', '0660', path.join(r, 'loop'), 'b', '7', '0']);
    execFileSync('mknod', ['-m', '0644', path.join(r, 'fifo'), 'p']);
  }
  const ta = listTree(ra);
  const tb = listTree(rb);
  assert.is(ta.get('/null'), '/null c 0666 0:0 dev=1,3');
  assert.is(ta.get('/loop'), '/loop b 0660 0:0 dev=7,0');
  assert.is(ta.get('/fifo'), '/fifo p 0644 0:0');
  assert.equal(compareTrees(ta, tb).map((d) => [d.path, d.fields]), [['/null', ['dev']]]);
});

test('xattrs are compared (name and value), security.capability and odd names included', () => {
  const setfattr = requireTool('setfattr');
  const { a, b } = pair(
    (r) => {
      base(r);
      execFileSync(setfattr, ['-n', 'user.same', '-v', 'v', path.join(r, 'd', 'one')]);
    },
    (r) => {
      execFileSync(setfattr, ['-n', 'user.same', '-v', 'other', path.join(r, 'd', 'one')]);
      execFileSync(setfattr, ['-n', 'user.new', '-v', '1', path.join(r, 'name with space')]);
      execFileSync(requireTool('setcap'), ['cap_net_bind_service=+ep', path.join(r, 'd', 'three')]);
    },
  );
  assert.match(a.get('/d/one')!, / xattrs=user\.same:[0-9a-f]{16}$/);
  assert.match(b.get('/d/three')!, / xattrs=security\.capability:[0-9a-f]{16}$/);
  assert.equal(compareTrees(a, b).map((d) => [d.path, d.fields]), [
    ['/d/one', ['xattrs']],
    ['/d/three', ['xattrs']],
    ['/name with space', ['xattrs']],
  ]);
});

test('an accepted difference covers only its listed fields of its path, and must occur', () => {
  const { a, b } = pair(
    (r) => base(r),
    (r) => {
      fs.chmodSync(path.join(r, 'd', 'one'), 0o4755);
      fs.chownSync(path.join(r, 'd', 'two'), 7, 8);
      fs.writeFileSync(path.join(r, 'd', 'three'), 'changed');
    },
  );
  const diffs = compareTrees(a, b);
  assert.equal(diffs.map((d) => [d.path, d.fields]), [
    ['/d/one', ['mode']],
    ['/d/three', ['sha', 'size']],
    ['/d/two', ['owner']],
  ]);
  // Exactly right: nothing left.
  assert.equal(unaccepted(diffs, parseAccepted('# c\n/d/one mode\n/d/two owner\n/d/three size,sha\n')), []);
  // The path alone is not enough: /d/two's owner is not covered by "mode".
  const wrongField = unaccepted(diffs, parseAccepted('/d/one mode\n/d/two mode\n/d/three size,sha\n'));
  assert.is(wrongField.length, 2, wrongField.join('\n'));
  assert.match(wrongField[0]!, /\/d\/two \[owner\][\s\S]*not accepted: owner/);
  assert.match(wrongField[1]!, /\/d\/two: accepted difference in mode does not occur/);
  // A stale acceptance fails too.
  const stale = unaccepted(diffs, parseAccepted('/d/one mode\n/d/two owner\n/d/three size,sha\n/link target\n'));
  assert.equal(stale, ['/link: accepted difference in target does not occur; remove it from differences.txt']);
  // The old one-path-per-line format is refused with the expected form.
  assert.throws(() => parseAccepted('/d/one\n', 'x/differences.txt'), /x\/differences\.txt:1: expected "PATH FIELD/);
});

test.run();
