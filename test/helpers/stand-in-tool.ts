/**
 * The stand-in `kubectl` and `idpbuilder` (the only stand-ins the tests
 * use; see stand-ins.ts). Run as `node stand-in-tool.js TOOL STATE_DIR ARGS...`
 * by the wrapper scripts stand-ins.ts writes. They answer the few commands
 * ocistack runs, in the real tools' formats, from files in STATE_DIR:
 *
 *   unreachable           present: no cluster (kubectl's "connection refused")
 *   localbuilds.json      the Localbuild items; absent: the CRD is not installed
 *   secrets/NS/NAME.json  Secret objects (base64 `data`, as the API returns them)
 *   calls.jsonl           every call is appended here: {tool, args}
 *
 * Anything else fails loudly (exit 2), so a test sees an unexpected command.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [tool, state, ...args] = process.argv.slice(2);
if (!tool || !state) {
  process.stderr.write('usage: stand-in-tool.js kubectl|idpbuilder STATE_DIR ARGS...\n');
  process.exit(2);
}
appendFileSync(join(state, 'calls.jsonl'), JSON.stringify({ tool, args }) + '\n');

const unreachable = existsSync(join(state, 'unreachable'));

function fail(text: string, code = 1): never {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  process.exit(code);
}

function readSecret(ns: string, name: string): { data?: Record<string, string> } | undefined {
  const f = join(state!, 'secrets', ns, `${name}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { data?: Record<string, string> }) : undefined;
}

/** `-n NS` / `--namespace NS` / `--namespace=NS`, `-o json`, positionals; `--request-timeout=...` accepted and ignored. */
function parseKubectl(argv: string[]): { positional: string[]; namespace: string; output?: string } {
  const positional: string[] = [];
  let namespace = 'default';
  let output: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-n' || a === '--namespace') namespace = argv[++i]!;
    else if (a.startsWith('--namespace=')) namespace = a.slice('--namespace='.length);
    else if (a === '-o' || a === '--output') output = argv[++i];
    else if (a.startsWith('-o=') || a.startsWith('--output=')) output = a.slice(a.indexOf('=') + 1);
    else if (a.startsWith('--request-timeout')) continue;
    else if (a.startsWith('-')) fail(`stand-in kubectl: unsupported flag ${a}`, 2);
    else positional.push(a);
  }
  return { positional, namespace, output };
}

function kubectl(argv: string[]): void {
  if (unreachable) {
    // What kubectl 1.2x prints with no cluster behind its config: retries, then the summary.
    fail(
      'E1202 12:00:00.000000   12345 memcache.go:265] couldn\'t get current server API group list: Get "http://localhost:8080/api?timeout=32s": dial tcp [::1]:8080: connect: connection refused\n' +
        'The connection to the server localhost:8080 was refused - did you specify the right host or port?',
    );
  }
  const { positional, namespace, output } = parseKubectl(argv);
  if (output !== 'json') fail(`stand-in kubectl: only -o json is supported (${argv.join(' ')})`, 2);
  const [verb, resource, name] = positional;
  if (verb !== 'get') fail(`stand-in kubectl: unsupported command ${argv.join(' ')}`, 2);
  if (resource === 'localbuilds.idpbuilder.cnoe.io' || resource === 'localbuilds' || resource === 'localbuild') {
    const f = join(state!, 'localbuilds.json');
    if (!existsSync(f)) fail('error: the server doesn\'t have a resource type "localbuilds"');
    const items = JSON.parse(readFileSync(f, 'utf8')) as unknown[];
    process.stdout.write(JSON.stringify({ apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } }, null, 4) + '\n');
    return;
  }
  if ((resource === 'secret' || resource === 'secrets') && name) {
    const s = readSecret(namespace, name);
    if (!s) fail(`Error from server (NotFound): secrets "${name}" not found`);
    process.stdout.write(JSON.stringify(s, null, 4) + '\n');
    return;
  }
  fail(`stand-in kubectl: unsupported command ${argv.join(' ')}`, 2);
}

function idpbuilder(argv: string[]): void {
  const want = ['get', 'secrets', '-p', 'gitea', '-o', 'json'];
  if (argv.join(' ') !== want.join(' ')) fail(`stand-in idpbuilder: unsupported command ${argv.join(' ')}`, 2);
  if (unreachable) {
    fail('Error: getting secret gitea-credential in gitea: Get "https://127.0.0.1:36443/api/v1/namespaces/gitea/secrets/gitea-credential": dial tcp 127.0.0.1:36443: connect: connection refused');
  }
  const s = readSecret('gitea', 'gitea-credential');
  if (!s) {
    // idpbuilder prints this on stdout and exits 0.
    process.stdout.write('no secrets found\n');
    return;
  }
  const dec = (k: string) => (s.data?.[k] ? Buffer.from(s.data[k]!, 'base64').toString('utf8') : undefined);
  // types.Secret: IsCore has no JSON tag; the others are omitempty (idpbuilder's printer indents with 2 spaces).
  const entry: Record<string, unknown> = { IsCore: true, name: 'gitea-credential', namespace: 'gitea' };
  for (const k of ['username', 'password', 'token']) {
    const v = dec(k);
    if (v) entry[k] = v;
  }
  process.stdout.write(JSON.stringify([entry], null, 2) + '\n');
}

if (tool === 'kubectl') kubectl(args);
else if (tool === 'idpbuilder') idpbuilder(args);
else fail(`stand-in-tool: unknown tool ${tool}`, 2);
