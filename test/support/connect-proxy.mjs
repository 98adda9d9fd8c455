// A forward proxy on 127.0.0.1 that answers CONNECT the way squid or tinyproxy does
// (RFC 9110, section 9.3.6: "200 Connection Established", then bytes both ways) and
// counts the tunnels it opened, per target, and the bytes it carried.
import { createServer } from 'node:http';
import { connect } from 'node:net';

export async function startConnectProxy() {
  /** @type {Map<string, number>} */
  const tunnels = new Map();
  let bytes = 0;
  const server = createServer((_request, response) => response.writeHead(405).end('CONNECT only\n'));
  server.on('connect', (request, client, head) => {
    const target = request.url ?? '';
    tunnels.set(target, (tunnels.get(target) ?? 0) + 1);
    const [host = '', port = '443'] = target.split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('data', (chunk) => (bytes += chunk.length));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    tunnels,
    bytes: () => bytes,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve(undefined));
    }),
  };
}
