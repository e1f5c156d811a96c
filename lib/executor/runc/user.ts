/**
 * USER of a RUN step -> uid, gid and supplementary gids, looked up in the
 * rootfs' own /etc/passwd and /etc/group (never the host's).
 *
 * The rules are the OCI runtimes' (as Docker and BuildKit apply them):
 * a numeric uid without a passwd entry runs with gid 0; a name must exist;
 * supplementary groups are the groups listing the user as a member, and
 * only when USER names no group. lib/engine/copy-chown.ts resolves --chown
 * with different rules (an unknown numeric uid doubles as the gid, no
 * supplementary groups), so it is not reused here.
 */
import * as fs from 'node:fs';
import { OcistackError, type SourceLocation } from '../../errors.js';
import { LayeredView, type RootfsView } from '../../rootfs/layer-view.js';
import { resolveInRootSync } from '../../scoped-path.js';

export interface RunUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

export interface AccountFiles {
  /** Text of /etc/passwd, undefined when the image has none. */
  passwd?: string;
  /** Text of /etc/group, undefined when the image has none. */
  group?: string;
}

function records(text: string | undefined, minFields: number): string[][] {
  return (text ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= minFields);
}

const NUMERIC = /^[0-9]+$/;
const MAX_ID = 0xffffffff;

function numericId(s: string, what: string, spec: string, location: SourceLocation): number {
  const n = Number(s);
  if (n > MAX_ID) throw userError(`${what} ${s} in USER "${spec}" is beyond 32 bits`, location);
  return n;
}

function userError(message: string, location: SourceLocation, hint = 'create it in an earlier RUN (e.g. adduser/addgroup), or use numeric ids'): OcistackError {
  return new OcistackError(message, { code: 'RUN_USER', location, hint });
}

/** Resolve USER (`name`, `uid`, `name:group`, `uid:gid`, empty for root). */
export function resolveRunUser(spec: string, files: AccountFiles, location: SourceLocation): RunUser {
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  if (groupPart === '') throw userError(`USER "${spec}" has an empty group`, location, 'write USER <user>[:<group>]');
  const users = records(files.passwd, 4).map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) }));
  const groups = records(files.group, 3).map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));

  let uid: number;
  let gid = 0;
  let name: string | undefined;
  if (userPart === '') {
    uid = 0;
    name = users.find((u) => u.uid === 0)?.name;
    gid = users.find((u) => u.uid === 0)?.gid ?? 0;
  } else if (NUMERIC.test(userPart)) {
    uid = numericId(userPart, 'uid', spec, location);
    const found = users.find((u) => u.uid === uid);
    name = found?.name;
    gid = found?.gid ?? 0;
  } else {
    const found = users.find((u) => u.name === userPart);
    if (!found) throw userError(`unknown user "${userPart}" in USER: no such user in the image's /etc/passwd`, location);
    ({ uid, gid, name } = found);
  }

  if (groupPart !== undefined) {
    if (NUMERIC.test(groupPart)) gid = numericId(groupPart, 'gid', spec, location);
    else {
      const found = groups.find((g) => g.name === groupPart);
      if (!found) throw userError(`unknown group "${groupPart}" in USER: no such group in the image's /etc/group`, location);
      gid = found.gid;
    }
    return { uid, gid, additionalGids: [] };
  }
  const extra = name === undefined ? [] : groups.filter((g) => g.members.includes(name!) && g.gid !== gid).map((g) => g.gid);
  return { uid, gid, additionalGids: [...new Set(extra)] };
}

/** A rootfs directory as a view (one layer; a 0/0 character device there is a device, not a whiteout). */
export function dirView(rootfs: string): RootfsView {
  return new LayeredView([{ dir: rootfs, opaque: new Set(), whiteouts: false }]);
}

/**
 * Read a file of a rootfs by its image path, resolving symlinks inside the
 * rootfs (an absolute link restarts at the rootfs, `..` stops at it), so an
 * image's `/etc/passwd -> /host/file` never reads the host. The rootfs is a
 * directory or the merged view of a RUN step's layer snapshots (read where
 * each file is, honouring whiteouts and opaque dirs, before anything is
 * mounted). Undefined when missing or not a regular file.
 */
export function readRootfsFile(rootfs: string | RootfsView, imagePath: string): string | undefined {
  const view = typeof rootfs === 'string' ? dirView(rootfs) : rootfs;
  const link = (rel: string): string | undefined => {
    const e = view.lookup(rel);
    return e?.st.isSymbolicLink() ? fs.readlinkSync(e.host) : undefined;
  };
  try {
    const e = view.lookup(resolveInRootSync(imagePath, true, link));
    if (!e?.st.isFile()) return undefined;
    return fs.readFileSync(e.host, 'utf8');
  } catch {
    return undefined;
  }
}

/** The accounts of a rootfs. */
export function readAccountFiles(rootfs: string | RootfsView): AccountFiles {
  return { passwd: readRootfsFile(rootfs, '/etc/passwd'), group: readRootfsFile(rootfs, '/etc/group') };
}
