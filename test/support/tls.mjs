// A self-signed certificate, for 127.0.0.1 unless told otherwise, made with openssl for the
// tests that need one.
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const HAVE_OPENSSL = spawnSync('openssl', ['version']).status === 0;

/**
 * @param {string} dir
 * @param {{ name: string, altName: string }} [subject] the common name, and the subjectAltName (`DNS:localhost`)
 * @returns {Promise<{ key: Buffer, cert: Buffer, certPath: string }>}
 */
export async function makeCertificate(dir, { name, altName } = { name: '127.0.0.1', altName: 'IP:127.0.0.1' }) {
  // key.pem and cert.pem for 127.0.0.1, as bench/http2.mjs expects.
  const stem = name === '127.0.0.1' ? '' : `${name}-`;
  const keyPath = join(dir, `${stem}key.pem`);
  const certPath = join(dir, `${stem}cert.pem`);
  const made = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath,
    '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=${altName}`,
  ]);
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`);
  return { key: await readFile(keyPath), cert: await readFile(certPath), certPath };
}
