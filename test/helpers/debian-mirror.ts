/**
 * The Debian mirror this machine's apt is configured with, read from
 * /etc/apt/sources.list and /etc/apt/sources.list.d/*.list (one-line
 * format) and *.sources (deb822), the files apt itself reads. Tests that
 * debootstrap a base image use it: the machine may reach only its own
 * mirror, so nothing here names deb.debian.org.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';

export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  /** The file it came from (for error messages). */
  file: string;
}

/** `deb [opts] URI SUITE COMPONENT...` lines (deb-src and comments skipped). */
export function parseOneLineSources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line.startsWith('deb ') && !line.startsWith('deb\t')) continue;
    const rest = line.slice(3).trim().replace(/^\[[^\]]*\]\s*/, '');
    const [uri, suite, ...components] = rest.split(/\s+/);
    if (uri && suite) out.push({ uri, suites: [suite], components, file });
  }
  return out;
}

/** deb822 stanzas: `Types: deb`, `URIs:`, `Suites:`, `Components:`, `Enabled: no` skipped. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = '';
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      if (/^\s/.test(line) && last) fields.set(last, `${fields.get(last)} ${line.trim()}`);
      else {
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m) fields.set((last = m[1]!.toLowerCase()), m[2]!.trim());
      }
    }
    const words = (k: string): string[] => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    if (!words('types').includes('deb') || fields.get('enabled')?.toLowerCase() === 'no') continue;
    for (const uri of words('uris')) out.push({ uri, suites: words('suites'), components: words('components'), file });
  }
  return out;
}

/** Every `deb` source apt reads on this machine, in apt's order (sources.list, then sources.list.d sorted). */
export function aptSources(root = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  const main = join(root, 'sources.list');
  if (fs.existsSync(main)) out.push(...parseOneLineSources(fs.readFileSync(main, 'utf8'), main));
  const dir = join(root, 'sources.list.d');
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  for (const n of names) {
    const f = join(dir, n);
    if (n.endsWith('.list')) out.push(...parseOneLineSources(fs.readFileSync(f, 'utf8'), f));
    else if (n.endsWith('.sources')) out.push(...parseDeb822Sources(fs.readFileSync(f, 'utf8'), f));
  }
  return out;
}

/** `mirror+file:/etc/apt/mirrors/x.list` (apt's mirror method): the first mirror listed there. */
function resolveMirrorMethod(uri: string): string {
  const m = /^mirror\+file:(.*)$/.exec(uri);
  if (!m) return uri;
  const first = fs.readFileSync(m[1]!, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim().split(/\s+/)[0]).find(Boolean);
  if (!first) throw new Error(`${m[1]} lists no mirror`);
  return first;
}

/**
 * The URI of the configured Debian archive for `suite`: the first `deb`
 * source with that suite and component main; else the first with main and a
 * plain suite name (not -security, -updates, -backports: another release of
 * the same archive serves `suite` too). Throws when there is none.
 */
export function debianMirror(suite: string, sources: AptSource[] = aptSources()): string {
  const withMain = sources.filter((s) => s.components.includes('main') && !/^(cdrom|file|copy):/.test(s.uri));
  const exact = withMain.find((s) => s.suites.includes(suite));
  const plain = withMain.find((s) => s.suites.some((x) => !x.includes('-') && !x.includes('/')) && !/security/.test(s.uri));
  const hit = exact ?? plain;
  if (!hit) {
    throw new Error(`no Debian mirror with suite ${suite} (or another release) and component main in /etc/apt/sources.list(.d); the debootstrap'd test images need one`);
  }
  return resolveMirrorMethod(hit.uri).replace(/\/+$/, '');
}
