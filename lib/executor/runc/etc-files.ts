/**
 * /etc/hosts, /etc/resolv.conf and /etc/hostname of a RUN step, generated
 * in the step's temp dir (outside the rootfs) and bind-mounted by the spec,
 * so they are never part of the layer.
 *
 * With the host's network a step resolves names as the host does (its
 * resolv.conf); without a network only loopback exists, so the hosts file
 * names localhost and the resolver file is empty.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface EtcFiles {
  hosts: string;
  resolvConf: string;
  hostname: string;
}

export function hostsContent(hostname: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`;
}

export function resolvConfContent(network: 'default' | 'none' | 'host', hostResolvConf = '/etc/resolv.conf'): string {
  if (network === 'none') return '';
  try {
    return fs.readFileSync(hostResolvConf, 'utf8');
  } catch {
    return '';
  }
}

/** Write the three files into `dir` and return their paths. */
export function writeEtcFiles(dir: string, hostname: string, network: 'default' | 'none' | 'host'): EtcFiles {
  fs.mkdirSync(dir, { recursive: true });
  const files: EtcFiles = { hosts: path.join(dir, 'hosts'), resolvConf: path.join(dir, 'resolv.conf'), hostname: path.join(dir, 'hostname') };
  fs.writeFileSync(files.hosts, hostsContent(hostname), { mode: 0o644 });
  fs.writeFileSync(files.resolvConf, resolvConfContent(network), { mode: 0o644 });
  fs.writeFileSync(files.hostname, `${hostname}\n`, { mode: 0o644 });
  return files;
}
