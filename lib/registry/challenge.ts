/**
 * `WWW-Authenticate` parsing (RFC 7235 auth-params), e.g. Gitea's
 * `Bearer realm="https://…/v2/token",service="container_registry",scope="*"`.
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header into its challenges (scheme lowercased). */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][\w-]*)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?\s*,?/y;
  let cur: Challenge | undefined;
  let i = 0;
  while (i < header.length) {
    re.lastIndex = i;
    const m = re.exec(header);
    if (!m || m[0].length === 0) break;
    i = re.lastIndex;
    const [, name, quoted, bare] = m;
    if (quoted === undefined && bare === undefined) {
      // A bare token is a new scheme. (A token68 after a scheme is not used by registries.)
      cur = { scheme: name!.toLowerCase(), params: {} };
      out.push(cur);
    } else if (cur) {
      cur.params[name!.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare!;
    }
  }
  return out;
}
