/**
 * The RUN differential suite, rootless: every fixture in fixtures/run/ is
 * built by the real `ocistack` bin running as the non-root user
 * `ocistack-rootless` (the test creates it with a subordinate id range in
 * /etc/subuid and /etc/subgid, helpers/rootless-user.ts), with its own HOME
 * and cache dir, so each RUN runs in a user namespace mapped with
 * newuidmap/newgidmap. The image is unpacked with umoci (as root) and
 * compared path by path with the same Buildah image as in
 * test/differential.test.ts, which Buildah builds as root
 * (`buildah bud --isolation=chroot`): the rootless image must equal what a
 * root build gives (uid 0 files stay 0, `USER app` files are 1000), with the
 * accepted differences of the root run. Differences inherent to rootless
 * mode would be listed in `differences-rootless.txt` (a set's or a
 * fixture's; none today). Each build also checks that the cache dir holds
 * files owned by subordinate ids: the snapshot really was extracted in the
 * user namespace.
 *
 * Run: node dist/test/differential-rootless.test.js  (FIXTURE=run/name to pick fixtures).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { changes, compareTrees, unaccepted } from './differential-util.js';
import { acceptedFor, baseTreeOf, buildahTree, buildOursRootless, fixtureDir, fixtures, prepareContext, setupDifferential, setupRootless, teardownDifferential } from './differential-harness.js';
import { ROOTLESS_USER } from './helpers/rootless-user.js';

test.before(async () => {
  await setupDifferential();
  setupRootless();
});
test.after(teardownDifferential);

for (const name of fixtures.filter((n) => n.startsWith('run/'))) {
  test(`${name} (ocistack as ${ROOTLESS_USER})`, async () => {
    const dir = fixtureDir(name);
    if (fs.existsSync(path.join(dir, 'expected.txt'))) assert.unreachable(`${name}: expected.txt fixtures are not compared rootless yet`);
    const ours = await buildOursRootless(name, await prepareContext(name));
    const problems = unaccepted(compareTrees(ours, await buildahTree(name)), acceptedFor(dir, true));
    if (problems.length) assert.unreachable(`${name} rootless: ${problems.length} difference(s) from buildah (as root) not as accepted:\n${problems.join('\n')}`);
    assert.ok(changes(baseTreeOf(), ours).length > 0, `${name}: the build changed nothing`);
  });
}

test.run();
