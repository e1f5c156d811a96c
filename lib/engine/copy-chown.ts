/**
 * `--chown` and `--chmod` for COPY/ADD: owner names resolved from the stage's
 * own /etc/passwd and /etc/group (never the host's), and chmod in octal or
 * symbolic (`u+x,go-w`) form.
 */
import { OcistackError, type SourceLocation } from '../errors.js';
import type { ImageFs } from '../layer/image-fs.js';

export interface Owner {
  uid: number;
  gid: number;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

function parseColonFile(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

function parsePasswd(text: string): PasswdEntry[] {
  return parseColonFile(text)
    .filter((f) => f.length >= 4)
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) }));
}

function parseGroup(text: string): { name: string; gid: number }[] {
  return parseColonFile(text)
    .filter((f) => f.length >= 3)
    .map((f) => ({ name: f[0]!, gid: Number(f[2]) }));
}

const NUMERIC = /^[0-9]+$/;

/**
 * Resolve a `--chown` value (`user`, `user:group`, `uid`, `uid:gid`, mixed)
 * against the stage's files. Without a group, a known user's primary group
 * is used, and an unknown numeric uid doubles as the gid.
 */
export async function resolveChown(spec: string, fs: ImageFs, location: SourceLocation): Promise<Owner> {
  const [user, group] = spec.includes(':') ? [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)] : [spec, undefined];
  if (user === '' || group === '') {
    throw new OcistackError(`invalid --chown value "${spec}"`, {
      code: 'COPY_CHOWN',
      location,
      hint: 'use --chown=<user>[:<group>] with names or numeric ids',
    });
  }
  let passwd: PasswdEntry[] | undefined;
  const users = async (): Promise<PasswdEntry[]> => {
    if (!passwd) {
      const buf = await fs.readFileIfExists('/etc/passwd');
      passwd = buf ? parsePasswd(buf.toString('utf8')) : [];
    }
    return passwd;
  };
  let uid: number;
  let primaryGid: number | undefined;
  if (NUMERIC.test(user)) {
    uid = Number(user);
    primaryGid = (await users()).find((u) => u.uid === uid)?.gid;
  } else {
    const found = (await users()).find((u) => u.name === user);
    if (!found) {
      throw new OcistackError(`unknown user "${user}" in --chown: no such user in the stage's /etc/passwd`, {
        code: 'COPY_CHOWN',
        location,
        hint: 'create the user in an earlier RUN (e.g. adduser), or use a numeric uid',
      });
    }
    uid = found.uid;
    primaryGid = found.gid;
  }
  let gid: number;
  if (group === undefined) gid = primaryGid ?? uid;
  else if (NUMERIC.test(group)) gid = Number(group);
  else {
    const buf = await fs.readFileIfExists('/etc/group');
    const found = buf ? parseGroup(buf.toString('utf8')).find((g) => g.name === group) : undefined;
    if (!found) {
      throw new OcistackError(`unknown group "${group}" in --chown: no such group in the stage's /etc/group`, {
        code: 'COPY_CHOWN',
        location,
        hint: 'create the group in an earlier RUN (e.g. addgroup), or use a numeric gid',
      });
    }
    gid = found.gid;
  }
  return { uid, gid };
}

/**
 * A parsed --chmod: turns a source mode into the copied mode. `octal` is the
 * mode when it was given in octal: BuildKit then also creates missing parent
 * directories with it (permission bits only), see LayerPlan.ensureDir.
 */
export type ChmodFn = ((mode: number, isDir: boolean) => number) & { octal?: number };

/**
 * Parse `--chmod`: octal (`755`, `0644`) or symbolic clauses as chmod(1)
 * takes them (`u+x`, `go-w`, `a=rX`, `u=rwx,g=rx,o=`).
 */
export function parseChmod(spec: string, location: SourceLocation): ChmodFn {
  const bad = () =>
    new OcistackError(`invalid --chmod value "${spec}"`, {
      code: 'COPY_CHMOD',
      location,
      hint: 'use an octal mode (e.g. --chmod=644) or symbolic clauses (e.g. --chmod=u+x,go-w)',
    });
  if (/^[0-7]{1,4}$/.test(spec)) {
    const m = parseInt(spec, 8);
    return Object.assign(() => m, { octal: m });
  }
  const clauses = spec.split(',').map((c) => {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(c);
    if (!m) throw bad();
    return { who: m[1] || 'a', op: m[2]!, perms: m[3]! };
  });
  return (mode, isDir) => {
    let out = mode & 0o7777;
    for (const { who, op, perms } of clauses) {
      const u = who.includes('u') || who.includes('a');
      const g = who.includes('g') || who.includes('a');
      const o = who.includes('o') || who.includes('a');
      let bits = 0;
      const anyExec = (out & 0o111) !== 0;
      for (const p of perms) {
        const x = p === 'x' || (p === 'X' && (isDir || anyExec));
        if (p === 'r') bits |= (u ? 0o400 : 0) | (g ? 0o040 : 0) | (o ? 0o004 : 0);
        if (p === 'w') bits |= (u ? 0o200 : 0) | (g ? 0o020 : 0) | (o ? 0o002 : 0);
        if (x) bits |= (u ? 0o100 : 0) | (g ? 0o010 : 0) | (o ? 0o001 : 0);
        if (p === 's') bits |= (u ? 0o4000 : 0) | (g ? 0o2000 : 0);
        if (p === 't') bits |= 0o1000;
      }
      const mask = (u ? 0o4700 : 0) | (g ? 0o2070 : 0) | (o ? 0o1007 : 0);
      if (op === '+') out |= bits;
      else if (op === '-') out &= ~bits;
      else out = (out & ~mask) | bits;
    }
    return out;
  };
}
