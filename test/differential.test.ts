/**
 * Differential tests: every fixture in fixtures/copy/ and fixtures/run/ is
 * built with ocistack (RUN steps by its default executor, runc) and with
 * Buildah (`buildah bud`, chroot isolation, vfs) from the same busybox
 * base in a local TLS registry; both images are unpacked with umoci and every
 * path's type, mode, owner, size, content, link target, hard-link group
 * (which paths share an inode), device numbers and xattrs must match
 * (test/differential-util.ts).
 *
 * Fixtures using what Buildah 1.28 lacks (heredocs, --parents, --exclude,
 * --link, symbolic --chmod) have an `expected.txt` instead: the paths that
 * differ from the base image, listed by hand from current BuildKit's
 * documented behaviour, each file citing its source.
 *
 * `@SPECIAL@` in a Dockerfile names an image with devices, a FIFO, hard
 * links and a security.capability xattr (pushSpecialImage).
 *
 * A fixture's optional `setup.sh` runs in a fresh copy of its context first
 * (hard links, modes, archives: what git cannot store). Accepted differences
 * from Buildah are listed per fixture in `differences.txt` (`PATH FIELD,...`
 * per line: only those fields of that path may differ, and each listed one
 * must) and explained in docs/differences.md; a set's own `differences.txt`
 * (fixtures/run/differences.txt) applies to each of its fixtures.
 *
 * The machinery (registry, contexts, builds, Buildah's tree) is in
 * test/differential-harness.ts; test/differential-rootless.test.ts builds
 * the run/ fixtures again with ocistack rootless.
 *
 * Run: node dist/test/differential.test.js  (FIXTURE=name,run/name to pick fixtures).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { changes, compareTrees, unaccepted } from './differential-util.js';
import { acceptedFor, baseTreeOf, buildahTree, buildOurs, fixtureDir, fixtures, prepareContext, setupDifferential, teardownDifferential } from './differential-harness.js';

test.before(setupDifferential);
test.after(teardownDifferential);

for (const name of fixtures) {
  test(name, async () => {
    const dir = fixtureDir(name);
    const expectedFile = path.join(dir, 'expected.txt');
    const ctx = await prepareContext(name);
    const ours = await buildOurs(name, ctx);
    if (fs.existsSync(expectedFile)) {
      const expected = fs.readFileSync(expectedFile, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
      assert.equal(changes(baseTreeOf(), ours), expected.sort(), `${name}: paths changed from the base differ from expected.txt`);
      return;
    }
    // A set may accept differences for all its fixtures (fixtures/run/differences.txt:
    // Buildah's RUN mount targets); a fixture's own file adds to them.
    const problems = unaccepted(compareTrees(ours, await buildahTree(name)), acceptedFor(dir, false));
    if (problems.length) assert.unreachable(`${name}: ${problems.length} difference(s) from buildah not as accepted:\n${problems.join('\n')}`);
    // The fixture must change something, or it compares nothing.
    assert.ok(changes(baseTreeOf(), ours).length > 0, `${name}: the build changed nothing`);
  });
}

test.run();
