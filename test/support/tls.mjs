// A self-signed certificate for 127.0.0.1, made with openssl for the test that needs it.
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const HAVE_OPENSSL = spawnSync('openssl', ['version']).status === 0;

/** @param {string} dir @returns {Promise<{ key: Buffer, cert: Buffer, certPath: string }>} */
export async function makeCertificate(dir) {
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ]);
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`);
  return { key: await readFile(keyPath), cert: await readFile(certPath), certPath };
}
