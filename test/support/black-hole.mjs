// A listening TCP port that never completes a connection: its accept queue is filled and
// never drained, so the kernel drops new SYNs and a client's connect hangs. Node always
// accepts, so this uses python3's socket module; it returns undefined without python3.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

const SCRIPT = `
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
port = s.getsockname()[1]
fillers = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(('127.0.0.1', port))
    except BlockingIOError: pass
    fillers.append(c)
time.sleep(0.2)
print(port, flush=True)
time.sleep(120)
`;

export async function startBlackHole() {
  const child = spawn('python3', ['-c', SCRIPT], { stdio: ['ignore', 'pipe', 'ignore'] });
  const failedToStart = once(child, 'error').then(() => undefined);
  const port = new Promise((resolve) => child.stdout.once('data', (data) => resolve(Number(String(data).trim()))));
  const result = await Promise.race([port, failedToStart]);
  if (result === undefined) return undefined;
  return { origin: `http://127.0.0.1:${result}`, close: () => void child.kill() };
}
