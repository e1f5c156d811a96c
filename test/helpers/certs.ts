/**
 * Self-signed TLS material like IDPBuilder's: one ECDSA P-256 certificate that
 * is its own CA, valid for cnoe.localtest.me, *.cnoe.localtest.me, localhost
 * and 127.0.0.1. Clients trust it by using the certificate itself as CA.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, requireTool, runOk } from './tools.js';

export interface TestCerts {
  /** PEM certificate the servers present. */
  certFile: string;
  /** PEM PKCS#8 ECDSA P-256 private key of `certFile`. */
  keyFile: string;
  /** PEM CA bundle that trusts `certFile` (the same self-signed certificate). */
  caFile: string;
  /** Directory holding `ca.crt` only: pass to skopeo/buildah as `--cert-dir`/`--src-cert-dir`/`--dest-cert-dir`. */
  certDir: string;
  /** PEM of a different, unrelated CA: trusting only this must make TLS fail. */
  otherCaFile: string;
  /** `--cert-dir` style directory holding only the other CA. */
  otherCertDir: string;
  /** The directory everything lives in. */
  dir: string;
}

/** SANs of IDPBuilder's certificate plus what local tests connect to. */
export const CERT_SANS = 'DNS:cnoe.localtest.me,DNS:*.cnoe.localtest.me,DNS:localhost,IP:127.0.0.1';

let cached: Promise<TestCerts> | undefined;

/** Self-signed ECDSA P-256 certificate + key for `cn` with `sans`, written into `dir` as `<name>.crt/.key`. */
export async function makeSelfSigned(dir: string, name: string, cn: string, sans: string): Promise<{ certFile: string; keyFile: string }> {
  const openssl = requireTool('openssl');
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await runOk(openssl, [
    'req', '-x509', '-nodes',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', keyFile, '-out', certFile,
    '-days', '30',
    '-subj', `/O=cnoe.io/CN=${cn}`,
    '-addext', `subjectAltName=${sans}`,
    // Self-signed and trusted directly: mark it a CA so OpenSSL (Node) accepts it as a trust anchor.
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,digitalSignature,keyCertSign',
    '-addext', 'extendedKeyUsage=serverAuth,clientAuth',
  ]);
  return { certFile, keyFile };
}

/**
 * The process-wide test certificate (created once with openssl in a temp dir),
 * plus an unrelated CA for TLS-failure tests.
 */
export function testCerts(): Promise<TestCerts> {
  cached ??= (async () => {
    const dir = makeTempDir('certs');
    const { certFile, keyFile } = await makeSelfSigned(dir, 'server', 'cnoe.localtest.me', CERT_SANS);
    const other = await makeSelfSigned(dir, 'other-ca', 'ocistack untrusted test CA', 'DNS:other.invalid');
    const certDir = join(dir, 'trust');
    const otherCertDir = join(dir, 'trust-other');
    mkdirSync(certDir);
    mkdirSync(otherCertDir);
    copyFileSync(certFile, join(certDir, 'ca.crt'));
    copyFileSync(other.certFile, join(otherCertDir, 'ca.crt'));
    return { certFile, keyFile, caFile: certFile, certDir, otherCaFile: other.certFile, otherCertDir, dir };
  })();
  return cached;
}
