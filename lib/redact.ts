/**
 * Userinfo in URLs (`https://user:password@host/...`, as ADD sources may
 * carry) never reaches messages, step names, history or progress events.
 * The mask follows BuildKit's util/urlutil.RedactCredentials, which its
 * provenance uses: a user name and a password each become `xxxxx`.
 */
const MASK = 'xxxxx';

function maskUserinfo(userinfo: string): string {
  const c = userinfo.indexOf(':');
  const user = c < 0 ? userinfo : userinfo.slice(0, c);
  if (c < 0) return user ? MASK : userinfo;
  return `${user ? MASK : ''}:${MASK}`;
}

/**
 * Every `scheme://userinfo@` in free text (an instruction line, a message)
 * with the userinfo masked. The authority runs to the first `/`, `?`, `#` or
 * white space and its last `@` ends the userinfo, as WHATWG URL parsing does,
 * so an unencoded `@` in a password is masked too.
 */
export function redactUrlCredentials(text: string): string {
  if (!text.includes('@')) return text;
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#"'`]*)@/gi, (_m, scheme: string, userinfo: string) => `${scheme}${maskUserinfo(userinfo)}@`);
}
