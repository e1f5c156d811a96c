/**
 * A stand-in IDPBuilder cluster for tests: `kubectl` and `idpbuilder`
 * scripts in a temp PATH directory (the only stand-ins the test rules
 * allow), answering from a state directory the test writes (see
 * stand-in-tool.ts for what each command prints). The real tools' formats:
 *
 * - `kubectl get localbuilds.idpbuilder.cnoe.io -o json`: a v1 List of
 *   Localbuilds (`spec.buildCustomization`: host, port as a string,
 *   usePathRouting, protocol);
 * - `kubectl get secret -n NS NAME -o json`: the Secret, `data` base64;
 *   `Error from server (NotFound): secrets "NAME" not found` otherwise;
 * - `idpbuilder get secrets -p gitea -o json`: a JSON array of
 *   `{IsCore, name, namespace, username, password, token}`, or the plain
 *   text `no secrets found`;
 * - no cluster: kubectl's "The connection to the server localhost:8080 was
 *   refused - did you specify the right host or port?", exit 1.
 *
 * `env()` gives an environment whose PATH holds only the stand-ins (the
 * machine's own kubectl, if any, is never reached).
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from './tools.js';

export interface LocalbuildSpec {
  name?: string;
  host?: string;
  /** As idpbuilder stores it: a string. */
  port?: string;
  usePathRouting?: boolean;
  protocol?: string;
}

export interface StandInCluster {
  /** The directory holding the `kubectl`/`idpbuilder` scripts (put it on PATH). */
  binDir: string;
  /** The state directory the stand-ins read. */
  stateDir: string;
  /** `base` (default: the test's process.env) with PATH set to the stand-ins only. */
  env(base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** Install the idpbuilder Localbuild CRD with these objects (`[]`: CRD installed, no object). */
  setLocalbuilds(items: LocalbuildSpec[]): void;
  /** Remove the CRD: kubectl then says the resource type does not exist. */
  removeLocalbuilds(): void;
  /** A Secret with these (plain) values, stored base64 as the API does. */
  setSecret(namespace: string, name: string, data: Record<string, string>): void;
  removeSecret(namespace: string, name: string): void;
  /** idpbuilder's gitea-credential secret (what `idpbuilder create` makes). */
  setGiteaCredential(c: { username?: string; password?: string; token?: string }): void;
  /** idpbuilder's certificate secrets (ingress-nginx/idpbuilder-cert tls.crt, default/idpbuilder-cert ca.crt). */
  setIdpbuilderCert(pem: string, which?: 'both' | 'ingress-nginx' | 'default'): void;
  /** No cluster: every command fails like kubectl without an API server. */
  setReachable(reachable: boolean): void;
  /** Every call so far, oldest first. */
  calls(): { tool: string; args: string[] }[];
  remove(): void;
}

export interface StandInOptions {
  /** Install the kubectl stand-in (default true). */
  kubectl?: boolean;
  /** Install the idpbuilder stand-in (default true). */
  idpbuilder?: boolean;
}

const TOOL_JS = fileURLToPath(new URL('./stand-in-tool.js', import.meta.url));

/** Single-quote for sh. */
function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function standInCluster(opts: StandInOptions = {}): StandInCluster {
  const dir = makeTempDir('stand-in-cluster');
  const binDir = join(dir, 'bin');
  const stateDir = join(dir, 'state');
  mkdirSync(binDir, { recursive: true });
  mkdirSync(join(stateDir, 'secrets'), { recursive: true });
  writeFileSync(join(stateDir, 'calls.jsonl'), '');
  for (const tool of ['kubectl', 'idpbuilder'] as const) {
    if (opts[tool] === false) continue;
    const f = join(binDir, tool);
    // Absolute node: the PATH given to the code under test holds only this directory.
    writeFileSync(f, `#!/bin/sh\nexec ${sq(process.execPath)} ${sq(TOOL_JS)} ${tool} ${sq(stateDir)} "$@"\n`);
    chmodSync(f, 0o755);
  }
  const secretFile = (ns: string, name: string) => join(stateDir, 'secrets', ns, `${name}.json`);
  const c: StandInCluster = {
    binDir,
    stateDir,
    env(base = process.env) {
      return { ...base, PATH: binDir };
    },
    setLocalbuilds(items) {
      const objs = items.map((i, n) => ({
        apiVersion: 'idpbuilder.cnoe.io/v1alpha1',
        kind: 'Localbuild',
        metadata: { name: i.name ?? (n === 0 ? 'localdev' : `localdev-${n}`), uid: `00000000-0000-0000-0000-00000000000${n}` },
        spec: {
          buildCustomization: {
            ...(i.host !== undefined ? { host: i.host, ingressHost: i.host } : {}),
            ...(i.port !== undefined ? { port: i.port } : {}),
            ...(i.usePathRouting ? { usePathRouting: true } : {}),
            ...(i.protocol !== undefined ? { protocol: i.protocol } : {}),
            selfSignedCert: '-----BEGIN CERTIFICATE-----\n(not read)\n-----END CERTIFICATE-----\n',
          },
          packageConfigs: { argoPackageConfigs: { enabled: true }, embeddedArgoApplicationsPackageConfigs: { enabled: true } },
        },
        status: { gitea: { available: true } },
      }));
      writeFileSync(join(stateDir, 'localbuilds.json'), JSON.stringify(objs));
    },
    removeLocalbuilds() {
      rmSync(join(stateDir, 'localbuilds.json'), { force: true });
    },
    setSecret(namespace, name, data) {
      mkdirSync(join(stateDir, 'secrets', namespace), { recursive: true });
      const b64: Record<string, string> = {};
      for (const [k, v] of Object.entries(data)) b64[k] = Buffer.from(v).toString('base64');
      writeFileSync(
        secretFile(namespace, name),
        JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data: b64 }),
      );
    },
    removeSecret(namespace, name) {
      rmSync(secretFile(namespace, name), { force: true });
    },
    setGiteaCredential(cred) {
      const data: Record<string, string> = {};
      for (const k of ['username', 'password', 'token'] as const) if (cred[k] !== undefined) data[k] = cred[k]!;
      c.setSecret('gitea', 'gitea-credential', data);
    },
    setIdpbuilderCert(pem, which = 'both') {
      if (which !== 'default') c.setSecret('ingress-nginx', 'idpbuilder-cert', { 'tls.crt': pem, 'tls.key': '(not read)' });
      if (which !== 'ingress-nginx') c.setSecret('default', 'idpbuilder-cert', { 'ca.crt': pem });
    },
    setReachable(reachable) {
      const f = join(stateDir, 'unreachable');
      if (reachable) rmSync(f, { force: true });
      else writeFileSync(f, '');
    },
    calls() {
      return readFileSync(join(stateDir, 'calls.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { tool: string; args: string[] });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return c;
}
