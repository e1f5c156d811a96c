/**
 * RUN end to end (issue 9, first slice): `ocistack build` with the default
 * executor (runc, found on PATH) on a busybox base from a real TLS registry,
 * pushed, read back by skopeo and run by runc. Checks what RUN steps leave in
 * the image (new files, deletions of base files, files of a named USER (busybox image's `app`, 1000:1000), multi-stage
 * RUN + COPY --from), the BuildKit-style history, and that a failing RUN
 * names its line and exit code and pushes no tag.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withRegistry, skopeoInspectArgs, type TestRegistry } from './helpers/registry.js';
import { busyboxBase, inspectImage, runImage } from './helpers/images.js';
import { makeTempDir, requireTool, run } from './helpers/tools.js';
import { ocistack } from './helpers/cli.js';

let reg: TestRegistry;
let base: string;

test.before(async () => {
  requireTool('runc');
  reg = await withRegistry('none');
  base = await busyboxBase(reg);
});

function context(dockerfile: string): string {
  const dir = makeTempDir('run-e2e');
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  writeFileSync(join(dir, 'app.txt'), 'from the context\n');
  return dir;
}

test('RUN steps on busybox: files made, base files deleted, USER owns its files, multi-stage COPY --from', async () => {
  const dir = context(`ARG BASE
FROM \${BASE} AS tools
RUN mkdir -p /out && echo built-in-stage > /out/tool.txt

FROM \${BASE}
ARG GREETING=hello
COPY app.txt /app/
RUN echo "$GREETING from RUN" > /app/run.txt && rm /bin/vi
USER app
RUN echo mine > /tmp/mine.txt
RUN <<EOF
#!/bin/sh
echo "shebang heredoc as $(id -u)" > /tmp/heredoc.txt
EOF
COPY --from=tools /out/tool.txt /app/
CMD ["sh", "-c", "cat /app/app.txt /app/run.txt /app/tool.txt /tmp/heredoc.txt; ls -n /tmp/mine.txt; test -e /bin/vi && echo vi-present || echo vi-gone; id -u"]
`);
  const ref = `${reg.host}/giteaadmin/run-e2e:1`;
  const r = await ocistack(['build', dir, '--build-arg', `BASE=${base}`, '-t', ref, '--push', '--ca-file', reg.caFile, '--progress', 'plain']);
  assert.is(r.code, 0, r.stderr);
  const img = await inspectImage(ref, reg);
  assert.is(img.digest, r.stdout.trim());
  const history = (img.config.history as { created_by?: string; empty_layer?: boolean }[]).map((h) => h.created_by ?? '');
  assert.ok(history.some((h) => h === 'RUN |1 GREETING=hello /bin/sh -c echo "$GREETING from RUN" > /app/run.txt && rm /bin/vi # buildkit'), history.join('\n'));
  assert.is(img.config.rootfs.diff_ids.length, img.manifest.layers.length);
  assert.not.ok(JSON.stringify(img.config.config.Env).includes('GREETING'), 'ARG values do not reach the image ENV');

  const out = await runImage(ref, { registry: reg });
  assert.is(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split('\n');
  assert.is(lines[0], 'from the context');
  assert.is(lines[1], 'hello from RUN');
  assert.is(lines[2], 'built-in-stage');
  assert.is(lines[3], 'shebang heredoc as 1000', 'a #! heredoc RUN runs as its own script');
  assert.match(lines[4]!, /^-\S+\s+\d+\s+1000\s+1000\s/, `owner of /tmp/mine.txt: ${lines[4]}`);
  assert.is(lines[5], 'vi-gone', 'rm of a base file is a whiteout');
  assert.is(lines[6], '1000');
  assert.match(r.stderr, /from RUN|#\d+/, 'plain progress shows the steps');
});

test('a failing RUN: its line, the exit code and its last output; no tag pushed', async () => {
  const dir = context(`ARG BASE
FROM \${BASE}
RUN echo before-failing
RUN echo about-to-fail >&2; exit 3
`);
  const ref = `${reg.host}/giteaadmin/run-e2e-fail:1`;
  const r = await ocistack(['build', dir, '--build-arg', `BASE=${base}`, '-t', ref, '--push', '--ca-file', reg.caFile, '--progress', 'plain']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /Dockerfile:4/);
  assert.match(r.stderr, /exit code 3|exited with 3|code 3/);
  assert.match(r.stderr, /about-to-fail/);
  const ins = await run(requireTool('skopeo'), ['inspect', '--raw', ...skopeoInspectArgs(reg), `docker://${ref}`]);
  assert.is.not(ins.code, 0, 'no tag for a failed build');
});

test.run();
