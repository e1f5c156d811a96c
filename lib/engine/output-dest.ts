/**
 * Checking where a build's results will go before the build starts, so a
 * typo in `--digest-file`, `--metadata-file` or `--output dest=` fails in a
 * moment with a typed error (code OUTPUT_DEST) instead of after the pull,
 * the layers and the push. The checks are what the writers need later:
 *  - a file (written by temp file + rename in its directory): the directory
 *    exists, is a directory and is writable; the file, when it exists, is
 *    not a directory;
 *  - an OCI layout directory (assembled beside it, or added to): when it
 *    exists it is a directory, empty or an OCI layout, and writable; else its
 *    nearest existing ancestor is a writable directory (missing parents are
 *    created, as before).
 *  - an archive file (OCI archive, docker archive; written by temp file +
 *    rename beside it): when it exists it is a file (replaced whole); missing
 *    parents are created, so the nearest existing ancestor must be a
 *    writable directory;
 *  - a local output directory (the unpacked file system, renamed into
 *    place whole): missing, or an empty directory; never a directory with
 *    files in it, since replacing it would delete them (buildx merges into
 *    it instead: see docs/differences.md).
 * The result of the build can still fail to be written (disk full, a race);
 * these checks only catch what is wrong already.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { OcistackError } from '../errors.js';

function destError(message: string, hint: string): OcistackError {
  return new OcistackError(message, { code: 'OUTPUT_DEST', hint });
}

async function statOrUndefined(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fsp.stat(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw destError(`${p}: a part of this path is a file, not a directory`, 'choose a path whose parents are directories');
    throw destError(`${p}: ${(e as Error).message}`, 'choose another path');
  }
}

async function writable(dir: string): Promise<boolean> {
  try {
    await fsp.access(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `file` (absolute) can be written by rename into its directory. `flag` names it in messages (e.g. `--digest-file`). */
export async function checkFileDest(file: string, flag: string): Promise<void> {
  const dir = path.dirname(file);
  const st = await statOrUndefined(file);
  if (st?.isDirectory()) throw destError(`${flag} ${file} is a directory`, `name a file, e.g. ${path.join(file, flag.replace(/^--/, '') + '.txt')}`);
  const parent = await statOrUndefined(dir);
  if (!parent) throw destError(`${flag} ${file}: directory ${dir} does not exist`, `create it first (mkdir -p ${dir}) or choose another path`);
  if (!parent.isDirectory()) throw destError(`${flag} ${file}: ${dir} is not a directory`, 'choose a path in an existing directory');
  if (!(await writable(dir))) throw destError(`${flag} ${file}: directory ${dir} is not writable`, 'choose a directory you can write to');
}

/** `dir` (absolute) can take an OCI image layout: new, empty, or an existing layout. */
export async function checkLayoutDest(dir: string, flag = '--output'): Promise<void> {
  const st = await statOrUndefined(dir);
  if (st) {
    if (!st.isDirectory()) throw destError(`${flag} dest ${dir} is an existing file, but an OCI layout is a directory`, 'name a new or empty directory, or an existing OCI layout');
    const entries = await fsp.readdir(dir);
    if (entries.length && !entries.includes('index.json')) {
      throw destError(`${flag} dest ${dir} exists and is not an OCI image layout`, 'write to a new or empty directory, or to an existing OCI layout');
    }
    if (!(await writable(dir))) throw destError(`${flag} dest ${dir} is not writable`, 'choose a directory you can write to');
    // A new layout replaces an empty `dir` by rename: its parent must be writable too.
    if (!entries.length && !(await writable(path.dirname(dir)))) {
      throw destError(`${flag} dest ${dir}: directory ${path.dirname(dir)} is not writable`, 'choose a directory you can write to');
    }
    return;
  }
  await checkAncestors(dir, flag);
}

/** Missing parents are created: the nearest existing ancestor of `p` must be a writable directory. */
async function checkAncestors(p: string, flag: string): Promise<void> {
  const dir = p;
  let up = path.dirname(dir);
  for (;;) {
    const a = await statOrUndefined(up);
    if (a) {
      if (!a.isDirectory()) throw destError(`${flag} dest ${dir}: ${up} is a file, not a directory`, 'choose a path whose parents are directories');
      if (!(await writable(up))) throw destError(`${flag} dest ${dir}: directory ${up} is not writable`, 'choose a directory you can write to');
      return;
    }
    const next = path.dirname(up);
    if (next === up) return;
    up = next;
  }
}

/** `file` (absolute) can take an archive (`what`: "an OCI archive", "a docker archive"): a new file, or an existing one replaced. */
export async function checkArchiveDest(file: string, what: string, flag = '--output'): Promise<void> {
  const st = await statOrUndefined(file);
  if (st) {
    if (st.isDirectory()) throw destError(`${flag} dest ${file} is a directory, but ${what} is a file`, `name a file, e.g. ${path.join(file, 'image.tar')}`);
    if (!(await writable(path.dirname(file)))) throw destError(`${flag} dest ${file}: directory ${path.dirname(file)} is not writable`, 'choose a directory you can write to');
    return;
  }
  await checkAncestors(file, flag);
}

/** `dir` (absolute) can take a local output: missing or an empty directory. */
export async function checkLocalDest(dir: string, flag = '--output'): Promise<void> {
  const st = await statOrUndefined(dir);
  if (st) {
    if (!st.isDirectory()) throw destError(`${flag} dest ${dir} is an existing file, but a local output is a directory`, 'name a new or empty directory');
    if ((await fsp.readdir(dir)).length) {
      throw destError(`${flag} dest ${dir} exists and is not empty; a local output replaces its directory whole and never deletes files it did not write`, `remove it first (rm -rf ${dir}) or name a new directory`);
    }
    if (!(await writable(path.dirname(dir)))) throw destError(`${flag} dest ${dir}: directory ${path.dirname(dir)} is not writable`, 'choose a directory you can write to');
    return;
  }
  await checkAncestors(dir, flag);
}
