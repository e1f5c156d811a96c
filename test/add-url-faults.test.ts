/**
 * `ADD http://...` never hangs a build (issue 8, Faults): a server that
 * accepts and never answers, or stops in the middle of the body, fails the
 * step after the idle limit (`registry.timeouts.idleMs`, `--timeout`) with an
 * ADD_DOWNLOAD error at the ADD's line; the build's AbortSignal cuts a
 * download at once (ABORTED). No partial file is left in the cache's tmp.
 * Each case has a guard timer, so a hang fails the test instead of the file.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { readdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build, OcistackError } from '../lib/index.js';
import { makeTempDir } from './helpers/tools.js';

const sockets = new Set<net.Socket>();
let silentPort = 0;
let halfPort = 0;
let silent: net.Server;
let half: http.Server;

test.before(async () => {
  // Accepts, reads the request, never answers.
  silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  // Answers 200 with a Content-Length of 1 MiB, sends 64 KiB, then nothing.
  half = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Length': String(1024 * 1024) });
    res.write(Buffer.alloc(64 * 1024, 'x'));
  });
  half.on('connection', (s) => sockets.add(s));
  silentPort = await new Promise((r) => silent.listen(0, '127.0.0.1', () => r((silent.address() as AddressInfo).port)));
  halfPort = await new Promise((r) => half.listen(0, '127.0.0.1', () => r((half.address() as AddressInfo).port)));
});

test.after(() => {
  for (const s of sockets) s.destroy();
  silent.close();
  half.close();
});

function contextWith(url: string): string {
  const dir = makeTempDir('add-url-faults');
  writeFileSync(join(dir, 'Dockerfile'), `FROM scratch\nADD ${url} /f\n`);
  return dir;
}

/** The build's outcome, or 'hung' when it is still running after `ms`. */
async function settle(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise((r) => (timer = setTimeout(() => r('hung'), ms)));
  try {
    return await Promise.race([p.then(() => 'built', (e) => e), guard]);
  } finally {
    clearTimeout(timer);
  }
}

function assertNoTemp(cacheDir: string): void {
  let left: string[] = [];
  try {
    left = readdirSync(join(cacheDir, 'tmp'));
  } catch {
    /* no tmp dir at all */
  }
  assert.equal(left.filter((n) => !n.endsWith('.lock')), [], `temp files left: ${left.join(', ')}`);
}

for (const [label, port] of [['never answers', () => silentPort], ['stops mid-body', () => halfPort]] as const) {
  test(`ADD from a server that ${label}: ADD_DOWNLOAD "stalled" at the ADD line after the idle limit`, async () => {
    const cacheDir = makeTempDir('add-url-faults-cache');
    const url = `http://127.0.0.1:${port()}/file.bin`;
    const r = await settle(build({ context: contextWith(url), cacheDir, registry: { timeouts: { idleMs: 400 } } }), 20_000);
    assert.ok(r instanceof OcistackError, `expected an OcistackError, got ${r instanceof Error ? r.stack : String(r)}`);
    assert.is(r.code, 'ADD_DOWNLOAD');
    assert.match(r.message, /stalled: no data for/);
    assert.match(r.message, new RegExp(`127\\.0\\.0\\.1:${port()}`));
    assert.is(r.location?.line, 2);
    assert.match(r.hint ?? '', /--timeout/);
    assertNoTemp(cacheDir);
  });
}

test('ADD download cut by the build signal: ABORTED at once, though the idle limit is long', async () => {
  const cacheDir = makeTempDir('add-url-faults-cache');
  const ctl = new AbortController();
  const p = build({ context: contextWith(`http://127.0.0.1:${halfPort}/file.bin`), cacheDir, signal: ctl.signal, registry: { timeouts: { idleMs: 60_000 } } });
  setTimeout(() => ctl.abort(), 300);
  const r = await settle(p, 20_000);
  assert.ok(r instanceof OcistackError, `expected an OcistackError, got ${r instanceof Error ? r.stack : String(r)}`);
  assert.is(r.code, 'ABORTED');
  assertNoTemp(cacheDir);
});

test.run();
