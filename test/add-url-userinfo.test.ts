/**
 * `ADD https://user:password@host/...` (issue 8, Security): the userinfo is
 * sent as Basic auth to that host only (Go's net/http, which BuildKit and
 * Docker download with, does the same; not to another host a redirect names), and
 * it appears in no step name, progress event, history entry or error, as
 * `ocistack build --progress json` and the library show them.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build, OcistackError, type ProgressEvent } from '../lib/index.js';
import { BlobStore } from '../lib/image/store.js';
import { redactUrlCredentials } from '../lib/redact.js';
import { ocistack } from './helpers/cli.js';
import { makeTempDir } from './helpers/tools.js';

const USER = 'deploy';
const SECRET = 'S3cretPw42';
const BODY = 'payload\n';

interface Seen {
  server: 'main' | 'other';
  path: string;
  authorization?: string;
}
const seen: Seen[] = [];
let main: http.Server;
let other: http.Server;
let port = 0;
let otherPort = 0;

function listen(s: http.Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
}

test.before(async () => {
  const expected = `Basic ${Buffer.from(`${USER}:${SECRET}`).toString('base64')}`;
  main = http.createServer((req, res) => {
    seen.push({ server: 'main', path: req.url ?? '', authorization: req.headers.authorization });
    if (req.url === '/redirect') {
      res.writeHead(302, { Location: `http://127.0.0.1:${otherPort}/moved.txt` });
      return res.end();
    }
    if (req.url === '/same-host-redirect') {
      res.writeHead(302, { Location: '/file.txt' });
      return res.end();
    }
    if (req.url !== '/file.txt') {
      res.writeHead(404);
      return res.end('not here');
    }
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="test"' });
      return res.end();
    }
    res.writeHead(200, { 'Content-Length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
  other = http.createServer((req, res) => {
    seen.push({ server: 'other', path: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(200, { 'Content-Length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
  port = await listen(main);
  otherPort = await listen(other);
});

test.after(() => {
  main.closeAllConnections();
  other.closeAllConnections();
  main.close();
  other.close();
});

function url(path: string): string {
  return `http://${USER}:${SECRET}@127.0.0.1:${port}${path}`;
}

async function buildText(dockerfile: string): Promise<{ events: ProgressEvent[]; result?: Awaited<ReturnType<typeof build>>; error?: unknown; cacheDir: string }> {
  const context = makeTempDir('userinfo-ctx');
  const cacheDir = makeTempDir('userinfo-cache');
  const events: ProgressEvent[] = [];
  try {
    const result = await build({ context, dockerfileText: dockerfile, cacheDir, env: {}, onProgress: (e) => events.push(e) });
    return { events, result, cacheDir };
  } catch (error) {
    return { events, error, cacheDir };
  }
}

function assertNoSecret(text: string, what: string): void {
  assert.not.ok(text.includes(SECRET), `${what} shows the password:\n${text}`);
  assert.not.ok(text.includes(`${USER}:`), `${what} shows the user name:\n${text}`);
}

test('ADD user:password@ URL: Basic auth to that host, masked in step names, progress and history', async () => {
  const before = seen.length;
  const r = await buildText(`FROM scratch\nADD ${url('/file.txt')} /f.txt\n`);
  assert.ok(r.result, `build failed: ${(r.error as OcistackError)?.format?.() ?? r.error}`);
  const hits = seen.slice(before).filter((s) => s.path === '/file.txt');
  assert.is(hits.length, 1);
  assert.is(hits[0]!.authorization, `Basic ${Buffer.from(`${USER}:${SECRET}`).toString('base64')}`, 'userinfo sent as Basic auth');
  assertNoSecret(JSON.stringify(r.events), 'progress events');
  const steps = r.events.filter((e) => e.type === 'step').map((e) => (e as { name: string }).name);
  assert.ok(steps.some((n) => n.includes(`ADD http://xxxxx:xxxxx@127.0.0.1:${port}/file.txt /f.txt`)), `step names: ${steps.join(' | ')}`);
  const store = new BlobStore(r.cacheDir);
  const config = readFileSync(store.path(r.result!.configDigest), 'utf8');
  assertNoSecret(config, 'image config');
  const history = JSON.parse(config).history as { created_by: string }[];
  assert.ok(history.some((h) => h.created_by.startsWith(`ADD http://xxxxx:xxxxx@127.0.0.1:${port}/file.txt /f.txt`)), JSON.stringify(history));
});

test('ADD user:password@ URL that redirects: the other host gets no Authorization', async () => {
  const before = seen.length;
  const r = await buildText(`FROM scratch\nADD ${url('/redirect')} /m.txt\n`);
  assert.ok(r.result, `build failed: ${(r.error as OcistackError)?.format?.() ?? r.error}`);
  const now = seen.slice(before);
  assert.ok(now.find((s) => s.server === 'main' && s.path === '/redirect')?.authorization?.startsWith('Basic '), 'first request authenticated');
  const moved = now.find((s) => s.server === 'other');
  assert.ok(moved, 'redirect followed');
  assert.is(moved!.authorization, undefined, 'no Authorization to the redirect target');
  // A relative Location stays on the URL's host and keeps its userinfo (Go's ResolveReference).
  const same = await buildText(`FROM scratch\nADD ${url('/same-host-redirect')} /s.txt\n`);
  assert.ok(same.result, `relative redirect: ${(same.error as OcistackError)?.format?.() ?? same.error}`);
});

test('ADD user:password@ URL errors (404, git URL, bad flag) never show the password', async () => {
  const missing = await buildText(`FROM scratch\nADD ${url('/missing.txt')} /x\n`);
  assert.instance(missing.error, OcistackError);
  const e = missing.error as OcistackError;
  assert.match(e.message, /HTTP 404/);
  assert.match(e.message, /xxxxx:xxxxx@127\.0\.0\.1/);
  assertNoSecret(e.format(), '404 error');
  assertNoSecret(JSON.stringify(missing.events), '404 progress events');

  const git = await buildText(`FROM scratch\nADD https://${USER}:${SECRET}@127.0.0.1:${port}/repo.git /src\n`);
  assert.instance(git.error, OcistackError);
  assertNoSecret((git.error as OcistackError).format(), 'git URL error');

  const flag = await buildText(`FROM scratch\nADD --bogus ${url('/file.txt')} /x\n`);
  assert.instance(flag.error, OcistackError);
  assert.match((flag.error as OcistackError).message, /bogus/);
  assertNoSecret((flag.error as OcistackError).format(), 'flag error');
});

test('CLI: --progress json and the error line of a failed ADD show no userinfo', async () => {
  const ctx = makeTempDir('userinfo-cli');
  writeFileSync(join(ctx, 'Dockerfile'), `FROM scratch\nADD ${url('/file.txt')} /ok.txt\nADD ${url('/missing.txt')} /x\n`);
  const r = await ocistack(['build', ctx, '--progress', 'json', '--cache-dir', makeTempDir('userinfo-cli-cache')], { env: { HOME: makeTempDir('userinfo-home') } });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /HTTP 404/);
  assertNoSecret(r.stderr + r.stdout, 'CLI output');
});

test('redactUrlCredentials masks userinfo like BuildKit (user, password, both; unencoded @)', () => {
  assert.is(redactUrlCredentials('ADD https://u:p@h.io/x /y'), 'ADD https://xxxxx:xxxxx@h.io/x /y');
  assert.is(redactUrlCredentials('https://tok@h.io/x'), 'https://xxxxx@h.io/x');
  assert.is(redactUrlCredentials('https://:p@h.io/x'), 'https://:xxxxx@h.io/x');
  assert.is(redactUrlCredentials('https://u:p@ss@h.io/x'), 'https://xxxxx:xxxxx@h.io/x');
  assert.is(redactUrlCredentials('https://h.io/a@b and mail@x.io'), 'https://h.io/a@b and mail@x.io');
  assert.is(redactUrlCredentials('git@github.com:x/y.git'), 'git@github.com:x/y.git');
});

test.run();
