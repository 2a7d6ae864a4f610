import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A private CA's certificate, and a server certificate it signed with its key. PEM files. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost, made with openssl in
 * `dir`: what an operator's private CA gives a self-hosted Redis.
 */
export function makeTlsCertificates(dir: string): TlsFiles {
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const steps = [
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=kc test CA'],
    ['-keyout', file('ca.key'), '-out', file('ca.pem')],
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1'],
    ['-keyout', file('server.key'), '-out', file('server.csr')],
    ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key')],
    ['-CAcreateserial', '-days', '2', '-extfile', file('san.ext'), '-out', file('server.pem')],
  ];
  for (let i = 0; i < steps.length; i += 2) {
    const run = spawnSync('openssl', [...steps[i], ...steps[i + 1]], { encoding: 'utf8' });
    if (run.status !== 0)
      throw new Error(`openssl ${steps[i][0]} failed (is openssl installed?): ${run.error?.message ?? run.stderr}`);
  }
  return { ca: file('ca.pem'), cert: file('server.pem'), key: file('server.key') };
}

/** redis-server arguments (or sentinel.conf lines, without the dashes) serving TLS only, on `port`. */
export function redisTlsSettings(port: number, tls: TlsFiles): [string, string][] {
  return [
    ['port', '0'],
    ['tls-port', String(port)],
    ['tls-cert-file', tls.cert],
    ['tls-key-file', tls.key],
    ['tls-ca-cert-file', tls.ca],
    ['tls-auth-clients', 'no'],
    // Replicas and sentinels reach the master over TLS too.
    ['tls-replication', 'yes'],
  ];
}
