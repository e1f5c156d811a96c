/**
 * lib/lock.ts and lib/process-owner.ts with real processes: owner records,
 * recovery of a killed holder's lock at once, pid reuse, and the race of
 * many processes recovering stale locks at the same time (no two holders,
 * no lost update).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acquireLock } from '../lib/lock.js';
import { currentOwner, ownerState } from '../lib/process-owner.js';
import { BlobStore } from '../lib/image/store.js';
import { listLocalImages, tagLocalImage } from '../lib/image/local-images.js';
import { MediaType } from '../lib/image/types.js';
import { OcistackError } from '../lib/errors.js';
import { makeTempDir } from './helpers/tools.js';

const LOCK_JS = fileURLToPath(new URL('../lib/lock.js', import.meta.url));

/** A pid that is certainly not running now: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(r.stdout);
  assert.ok(pid > 0);
  return pid;
}

function staleRecord(pid: number, nonce = 'stale' + Math.random().toString(16).slice(2)): string {
  const me = currentOwner();
  return JSON.stringify({ pid, start: '', host: me.host, boot: me.boot, nonce, taken: new Date().toISOString() }) + '\n';
}

test('owner state: alive, dead pid, reused pid (other start time), other host', () => {
  const me = currentOwner();
  assert.is(ownerState(me), 'alive');
  assert.is(ownerState({ ...me, pid: deadPid() }), 'dead');
  if (me.start) assert.is(ownerState({ ...me, start: String(Number(me.start) + 1) }), 'dead', 'same pid, another start time: reused pid');
  assert.is(ownerState({ ...me, host: `${me.host}-elsewhere` }), 'unknown');
  if (me.boot) assert.is(ownerState({ ...me, boot: '00000000-0000-0000-0000-000000000000' }), 'dead', 'another boot');
});

test('a lock records its owner and is removed on release', async () => {
  const dir = makeTempDir('lock-');
  const held = await acquireLock(join(dir, 'x.lock'));
  const rec = JSON.parse(readFileSync(join(dir, 'x.lock'), 'utf8'));
  assert.is(rec.pid, process.pid);
  assert.is(rec.host, os.hostname());
  assert.is(rec.start, currentOwner().start);
  await held.release();
  assert.equal(readdirSync(dir), []);
});

test('a live holder on another host is waited for, then CACHE_LOCKED names it', async () => {
  const dir = makeTempDir('lock-');
  const me = currentOwner();
  writeFileSync(join(dir, 'x.lock'), JSON.stringify({ ...me, host: 'other-host', nonce: 'n1', taken: '' }));
  const err = await acquireLock(join(dir, 'x.lock'), { waitMs: 300 }).catch((e: unknown) => e);
  assert.instance(err, OcistackError);
  assert.is((err as OcistackError).code, 'CACHE_LOCKED');
  assert.match((err as OcistackError).message, `process ${me.pid} on other-host`);
  assert.ok(existsSync(join(dir, 'x.lock')), 'a lock of another host is never removed');
});

test('the cache index lock of a process killed with -9 while holding it is recovered at once', async () => {
  const root = makeTempDir('lock-cache-');
  const lockFile = join(root, 'index.json.lock');
  const child = spawn(process.execPath, ['--input-type=module', '-e', `
    const { acquireLock } = await import(${JSON.stringify(LOCK_JS)});
    await acquireLock(${JSON.stringify(lockFile)});
    process.stdout.write('held\\n');
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.on('exit', (c) => reject(new Error(`child exited ${c} before holding the lock`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(existsSync(lockFile), 'the killed holder left its lock');
  const store = new BlobStore(root);
  const manifest = await store.putBytes(Buffer.from('{"schemaVersion":2}'));
  // The default wait is 15 s; a dead owner's lock is taken over without waiting for it.
  await tagLocalImage(store, { mediaType: MediaType.OciManifest, digest: manifest.digest, size: manifest.size }, ['localhost/a/b:1']);
  assert.equal((await listLocalImages(store)).map(([r]) => r), ['localhost/a/b:1']);
  assert.not.ok(existsSync(lockFile), 'released after use');
  assert.equal(readdirSync(root).filter((n) => n.startsWith('index.json.lock')), [], 'no claim or temp file of the lock is left');
});

/**
 * The race: 8 processes take the same lock 24 times each. Every 3rd time a
 * holder "dies" holding it: it replaces the lock with a record of a dead pid
 * (exactly what a holder killed with -9 leaves) instead of releasing, so the
 * others all recover stale locks at the same moment, many times over. Under
 * the lock each process creates a holder file with O_EXCL (EEXIST = two
 * holders at once) and increments a shared counter with a read, a pause and
 * a write (an overlap loses an update).
 */
test('8 processes recovering stale locks at once: never two holders, no lost update', async () => {
  const dir = makeTempDir('lock-race-');
  const lockFile = join(dir, 'shared.lock');
  const counter = join(dir, 'counter');
  const holder = join(dir, 'holder');
  const overlaps = join(dir, 'overlaps');
  writeFileSync(counter, '0');
  writeFileSync(overlaps, '');
  const dead = deadPid();
  writeFileSync(lockFile, staleRecord(dead)); // present before anyone starts
  const ROUNDS = 24;
  const PROCS = 8;
  const script = `
    import { acquireLock } from ${JSON.stringify(LOCK_JS)};
    import * as fs from 'node:fs';
    import { randomBytes } from 'node:crypto';
    const [lockFile, counter, holder, overlaps, dead, rounds, go, host, boot] = process.argv.slice(2);
    while (Date.now() < Number(go)) await new Promise((r) => setTimeout(r, 2));
    for (let i = 0; i < Number(rounds); i++) {
      const held = await acquireLock(lockFile, { waitMs: 60000, pollMs: 1 });
      try {
        fs.writeFileSync(holder, String(process.pid), { flag: 'wx' });
      } catch (e) {
        fs.appendFileSync(overlaps, process.pid + ' found holder ' + fs.readFileSync(holder, 'utf8') + '\\n');
      }
      const n = Number(fs.readFileSync(counter, 'utf8'));
      await new Promise((r) => setTimeout(r, 1));
      fs.writeFileSync(counter, String(n + 1));
      fs.rmSync(holder, { force: true });
      if (i % 3 === 2) {
        // Die holding it: the lock now names a dead process.
        const tmp = lockFile + '.crash-' + randomBytes(4).toString('hex');
        fs.writeFileSync(tmp, JSON.stringify({ pid: Number(dead), start: '', host, boot, nonce: randomBytes(8).toString('hex'), taken: '' }));
        fs.renameSync(tmp, lockFile);
      } else {
        await held.release();
      }
    }
  `;
  const scriptFile = join(dir, 'contend.mjs');
  writeFileSync(scriptFile, script);
  const go = Date.now() + 1500; // all start together, after Node's start-up
  const codes = await Promise.all(
    Array.from({ length: PROCS }, () =>
      new Promise<number>((resolve) => {
        const c = spawn(process.execPath, [scriptFile, lockFile, counter, holder, overlaps, String(dead), String(ROUNDS), String(go), currentOwner().host, currentOwner().boot], { stdio: ['ignore', 'inherit', 'inherit'] });
        c.on('exit', (code) => resolve(code ?? -1));
      }),
    ),
  );
  assert.equal(codes, Array(PROCS).fill(0), 'every contender finished');
  assert.is(readFileSync(overlaps, 'utf8'), '', 'two processes held the lock at once');
  assert.is(Number(readFileSync(counter, 'utf8')), ROUNDS * PROCS, 'updates lost under the lock');
});

test.run();
