// A real nginx (Debian's) on 127.0.0.1, started by a test with a configuration of its own
// in a temporary folder: the server that answers like the Hugging Face Hub and its CDN.
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { runs } from './needs.mjs';

export const HAVE_NGINX = runs('nginx', '-v');

/** A port free on 127.0.0.1 now (the kernel's pick, released for nginx to take). */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  await new Promise((resolve) => server.close(() => resolve(undefined)));
  return port;
}

/**
 * Starts nginx in the foreground with the `http { ... }` block `http` (everything around it
 * is set here: logs, pid and temporary files in `dir`), and waits until `ports` accept
 * connections.
 * @param {string} dir @param {string} http @param {number[]} ports
 */
export async function startNginx(dir, http, ports) {
  await mkdir(join(dir, 'temp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const temp = (name) => `${name}_temp_path ${join(dir, 'temp', name)};`;
  await writeFile(conf, `
# As root, workers run as root too: they write the logs into this test's own folder.
user root root;
worker_processes 1;
error_log ${join(dir, 'error.log')} info;
pid ${join(dir, 'nginx.pid')};
events { worker_connections 256; }
http {
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  ${http}
}
`);
  const child = spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  /** @type {Promise<number | null>} */
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  for (const port of ports) {
    while (!(await accepts(port))) {
      if (gone) throw new Error(`nginx did not start: ${stderr}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return {
    async close() {
      if (!gone) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** @param {number} port */
function accepts(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}
