/**
 * The image config's `Env` list (`KEY=value` strings): the one place that
 * says how a key is found and set, used for the config the build writes and
 * for the stage environment words are expanded against, so the two agree.
 *
 * - Lookup: the LAST entry of a key wins, as BuildKit's `shell.EnvsFromSlice`
 *   (frontend/dockerfile/shell/lex.go) and LLB's env list read a base
 *   image's `Env` with duplicates.
 * - Set: the first entry of the key is replaced in place (BuildKit's
 *   `addEnv` in dockerfile2llb keeps the position) and later duplicates are
 *   dropped, so after `ENV A=3` every reader sees 3. BuildKit leaves such a
 *   later duplicate in the config, where it then wins for lookups; that is
 *   the one difference (docs/dockerfile.md).
 * - An entry without `=` is the key with an empty value.
 */

function keyOf(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** Value of `key` in an `Env` list (the last entry of it wins), or undefined. */
export function getEnv(env: readonly string[] | undefined | null, key: string): string | undefined {
  if (!env) return undefined;
  for (let i = env.length - 1; i >= 0; i--) {
    const e = env[i]!;
    if (keyOf(e) === key) {
      const eq = e.indexOf('=');
      return eq < 0 ? '' : e.slice(eq + 1);
    }
  }
  return undefined;
}

/** Set `key=value` in place: the first entry of `key` keeps its position, later ones are removed. */
export function setEnv(env: string[], key: string, value: string): void {
  let found = false;
  for (let i = 0; i < env.length; i++) {
    if (keyOf(env[i]!) !== key) continue;
    if (!found) {
      env[i] = `${key}=${value}`;
      found = true;
    } else {
      env.splice(i--, 1);
    }
  }
  if (!found) env.push(`${key}=${value}`);
}
