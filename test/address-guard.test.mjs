// The address guard: which addresses are refused (pure classification: IPv4, IPv6, the
// IPv4-mapped forms, the edges of each range), and, end to end, that a row's URL, a
// redirect or a name leading to 169.254.169.254 fails as blocked_address with no
// connection reaching a real server listening there. The end-to-end cases run in a network
// namespace of their own (unshare -n -m, as root): nothing can leave the machine, and the
// metadata address and the host names exist only inside it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { allowedAddresses, BlockedAddressError, createAddressGuard, describeRefusals, literalAddress } from '../dist/fetch/address-guard.js';
import { connectionNotes } from '../dist/fetch/dispatcher.js';
import { tempDir } from './support/run.mjs';
import { runs, unlessMissing } from './support/needs.mjs';

const METADATA_KIND = 'link-local (cloud metadata services)';
const ALWAYS = 'always refused';
const STRICT = 'refused by --public-addresses-only';

describe('which addresses are refused', () => {
  const guard = createAddressGuard({ publicAddressesOnly: false });
  const strict = createAddressGuard({ publicAddressesOnly: true });
  /** @param {string} address */
  const verdict = (address) => [guard.refusal(address), strict.refusal(address)].map((refusal) => (refusal ? `${refusal.kind}; ${refusal.rule}` : 'allowed'));

  // [address, what every run says, what --public-addresses-only says]
  /** @type {[string, string, string][]} */
  const table = [
    // Link-local and cloud metadata, with the range's edges and the IPv4-mapped forms.
    ['169.254.169.254', `${METADATA_KIND}; ${ALWAYS}`, `${METADATA_KIND}; ${ALWAYS}`],
    ['169.254.0.0', `${METADATA_KIND}; ${ALWAYS}`, `${METADATA_KIND}; ${ALWAYS}`],
    ['169.254.255.255', `${METADATA_KIND}; ${ALWAYS}`, `${METADATA_KIND}; ${ALWAYS}`],
    ['169.253.255.255', 'allowed', 'allowed'],
    ['169.255.0.0', 'allowed', 'allowed'],
    ['::ffff:169.254.169.254', `${METADATA_KIND}; ${ALWAYS}`, `${METADATA_KIND}; ${ALWAYS}`],
    ['::ffff:a9fe:a9fe', `${METADATA_KIND}; ${ALWAYS}`, `${METADATA_KIND}; ${ALWAYS}`],
    ['0:0:0:0:0:ffff:a9fe:a9fe', `${METADATA_KIND}; ${ALWAYS}`, `${METADATA_KIND}; ${ALWAYS}`],
    ['fe80::1', `link-local; ${ALWAYS}`, `link-local; ${ALWAYS}`],
    ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', `link-local; ${ALWAYS}`, `link-local; ${ALWAYS}`],
    ['fec0::1', 'allowed', 'allowed'],
    ['fd00:ec2::254', `AWS's metadata service; ${ALWAYS}`, `AWS's metadata service; ${ALWAYS}`],
    ['fd00:ec2::253', 'allowed', `unique-local; ${STRICT}`],
    ['100.100.100.200', `Alibaba Cloud's metadata service; ${ALWAYS}`, `Alibaba Cloud's metadata service; ${ALWAYS}`],
    ['::ffff:100.100.100.200', `Alibaba Cloud's metadata service; ${ALWAYS}`, `Alibaba Cloud's metadata service; ${ALWAYS}`],
    ['100.100.100.201', 'allowed', `shared address space (CGNAT); ${STRICT}`],
    // Unspecified: a connection there reaches this machine.
    ['0.0.0.0', `unspecified; ${ALWAYS}`, `unspecified; ${ALWAYS}`],
    ['0.255.255.255', `unspecified; ${ALWAYS}`, `unspecified; ${ALWAYS}`],
    ['::ffff:0.0.0.0', `unspecified; ${ALWAYS}`, `unspecified; ${ALWAYS}`],
    ['1.0.0.0', 'allowed', 'allowed'],
    ['::', `unspecified; ${ALWAYS}`, `unspecified; ${ALWAYS}`],
    // Multicast.
    ['224.0.0.1', `multicast; ${ALWAYS}`, `multicast; ${ALWAYS}`],
    ['239.255.255.255', `multicast; ${ALWAYS}`, `multicast; ${ALWAYS}`],
    ['223.255.255.255', 'allowed', 'allowed'],
    ['::ffff:224.0.0.251', `multicast; ${ALWAYS}`, `multicast; ${ALWAYS}`],
    ['ff02::1', `multicast; ${ALWAYS}`, `multicast; ${ALWAYS}`],
    ['ff00::', `multicast; ${ALWAYS}`, `multicast; ${ALWAYS}`],
    // Only with --public-addresses-only: loopback, private, CGNAT, unique-local.
    ['127.0.0.1', 'allowed', `loopback; ${STRICT}`],
    ['127.255.255.255', 'allowed', `loopback; ${STRICT}`],
    ['::ffff:127.0.0.1', 'allowed', `loopback; ${STRICT}`],
    ['::1', 'allowed', `loopback; ${STRICT}`],
    ['::2', 'allowed', 'allowed'],
    ['10.0.0.0', 'allowed', `private; ${STRICT}`],
    ['10.255.255.255', 'allowed', `private; ${STRICT}`],
    ['11.0.0.0', 'allowed', 'allowed'],
    ['172.16.0.1', 'allowed', `private; ${STRICT}`],
    ['172.31.255.255', 'allowed', `private; ${STRICT}`],
    ['172.15.255.255', 'allowed', 'allowed'],
    ['172.32.0.0', 'allowed', 'allowed'],
    ['192.168.1.1', 'allowed', `private; ${STRICT}`],
    ['192.169.0.0', 'allowed', 'allowed'],
    ['::ffff:10.1.2.3', 'allowed', `private; ${STRICT}`],
    ['100.64.0.0', 'allowed', `shared address space (CGNAT); ${STRICT}`],
    ['100.127.255.255', 'allowed', `shared address space (CGNAT); ${STRICT}`],
    ['100.63.255.255', 'allowed', 'allowed'],
    ['100.128.0.0', 'allowed', 'allowed'],
    ['fc00::1', 'allowed', `unique-local; ${STRICT}`],
    ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'allowed', `unique-local; ${STRICT}`],
    ['fe00::1', 'allowed', 'allowed'],
    // Public addresses.
    ['8.8.8.8', 'allowed', 'allowed'],
    ['::ffff:8.8.8.8', 'allowed', 'allowed'],
    ['2606:4700:4700::1111', 'allowed', 'allowed'],
    // Not an address: a name is the DNS cache's to resolve, then checked.
    ['metadata.google.internal', 'allowed', 'allowed'],
  ];

  for (const [address, always, publicOnly] of table) {
    it(address, () => assert.deepEqual(verdict(address), [always, publicOnly]));
  }

  it('finds the address in every spelling a URL allows', () => {
    // Host spellings put into a loopback URL through its host setter, which parses them as
    // a URL in a row would be parsed: nothing is fetched here.
    const spelled = (host) => Object.assign(new URL('http://127.0.0.1/'), { host });
    assert.equal(literalAddress(spelled('2852039166')), '169.254.169.254');
    assert.equal(literalAddress(spelled('0xa9.0xfe.0xa9.0xfe:8080')), '169.254.169.254');
    assert.equal(literalAddress(spelled('0251.0376.0251.0376')), '169.254.169.254');
    assert.equal(literalAddress(spelled('169.254.169.254.')), '169.254.169.254');
    assert.equal(literalAddress(spelled('[0:0:0:0:0:ffff:169.254.169.254]')), '::ffff:a9fe:a9fe');
    assert.equal(literalAddress(new URL('https://[::1]:8443')), '::1');
    assert.equal(literalAddress(spelled('images.example')), undefined);
  });

  it("keeps a name's allowed addresses; with none left, names every refused one", () => {
    const found = [{ address: '169.254.169.254', family: 4 }, { address: '93.184.215.14', family: 4 }, { address: 'fe80::1', family: 6 }];
    assert.deepEqual(allowedAddresses(guard, 'mixed.example', found), [{ address: '93.184.215.14', family: 4 }]);
    assert.throws(
      () => allowedAddresses(strict, 'inside.example', [{ address: '10.0.0.7', family: 4 }, { address: 'fd00::7', family: 6 }]),
      (error) =>
        error instanceof BlockedAddressError &&
        error.message === `inside.example resolves only to refused addresses: 10.0.0.7 (private, ${STRICT}), fd00::7 (unique-local, ${STRICT})`,
    );
    assert.equal(describeRefusals('127.0.0.1', [{ address: '127.0.0.1', kind: 'loopback', rule: STRICT }]), `127.0.0.1 is loopback, ${STRICT}`);
    assert.equal(describeRefusals('metadata.test', [{ address: '169.254.169.254', kind: METADATA_KIND, rule: ALWAYS }]), `metadata.test resolves to 169.254.169.254, which is ${METADATA_KIND}, ${ALWAYS}`);
  });

  it('a run through a proxy with --public-addresses-only says what the guard cannot see', () => {
    const proxied = { proxy: 'http://proxy.example:3128', insecure: false };
    assert.deepEqual(connectionNotes({ ...proxied, publicAddressesOnly: true }), [
      'fetching through proxy http://proxy.example:3128/',
      '--public-addresses-only: the proxy resolves the host names, so only addresses written in URLs (and NO_PROXY hosts) are checked',
    ]);
    assert.deepEqual(connectionNotes({ ...proxied, publicAddressesOnly: false }), ['fetching through proxy http://proxy.example:3128/']);
  });
});

const WORKER = new URL('./support/address-guard-worker.mjs', import.meta.url).pathname;

describe('the guard end to end, in a network namespace of its own', { skip: unlessMissing(runs('unshare', '-n', '-m', 'true'), 'unshare -n -m (root or CAP_SYS_ADMIN, for a network namespace of its own)') }, () => {
  /** @type {Awaited<ReturnType<typeof tempDir>>} */
  let work;
  /** @type {any} */
  let report;

  before(async () => {
    work = await tempDir();
    const hosts = join(work.path, 'hosts');
    await writeFile(hosts, `${await readFile('/etc/hosts', 'utf8')}\n169.254.169.254 metadata.test\n169.254.169.254 mixed.test\n127.0.0.1 mixed.test\n`);
    const resolvConf = join(work.path, 'resolv.conf');
    await writeFile(resolvConf, 'nameserver 127.0.0.1\noptions timeout:5 attempts:1\n');
    // Inside: lo up, the metadata address on it, the hosts file and resolv.conf mounted over /etc's (private mounts).
    const setup = 'ip link set lo up && ip addr add 169.254.169.254/32 dev lo && mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"';
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/_proxy$/i.test(key)));
    report = await new Promise((resolve, reject) => {
      const child = spawn('unshare', ['-n', '-m', '--', 'sh', '-c', setup, 'guard', hosts, resolvConf, process.execPath, WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`the namespace worker exited ${code}: ${stderr}`))));
    });
  });
  after(() => work?.cleanup());

  /** @param {{ ok: boolean, reason?: string, detail?: string, metadataConnections: number }} result @param {string} detail */
  function assertBlocked(result, detail) {
    assert.deepEqual(result, { ok: false, reason: 'blocked_address', detail, metadataConnections: 0 });
  }

  it('a row URL of http://169.254.169.254/ fails blocked_address, in any spelling, with no connection to it', () => {
    assertBlocked(report.literal, `169.254.169.254 is ${METADATA_KIND}, ${ALWAYS}`);
    assertBlocked(report.decimal, `169.254.169.254 is ${METADATA_KIND}, ${ALWAYS}`);
    assertBlocked(report.mapped, `::ffff:a9fe:a9fe is ${METADATA_KIND}, ${ALWAYS}`);
  });

  it('a redirect from an image host to it fails blocked_address, naming the hop', () => {
    const { port } = report;
    assertBlocked(report.redirect, `redirected to http://169.254.169.254:${port}/x.jpg: 169.254.169.254 is ${METADATA_KIND}, ${ALWAYS}`);
    assertBlocked(report.redirectToName, `redirected to http://metadata.test:${port}/x.jpg: metadata.test resolves to 169.254.169.254, which is ${METADATA_KIND}, ${ALWAYS}`);
  });

  it('a name that resolves to it fails blocked_address; a name with another address uses only that one', () => {
    assertBlocked(report.name, `metadata.test resolves to 169.254.169.254, which is ${METADATA_KIND}, ${ALWAYS}`);
    assert.deepEqual(report.mixed, Array.from({ length: 12 }, () => ({ ok: true, metadataConnections: 0 })));
  });

  it('loopback works by default', () => {
    assert.deepEqual(report.loopback, { ok: true, metadataConnections: 0 });
    assert.equal(report.default.code, 0, report.default.stderr);
    assert.deepEqual(report.default.results.map((/** @type {any} */ line) => line.status), ['saved', 'saved']);
    assert.equal(report.default.imageRequests, 2);
  });

  it('--public-addresses-only refuses loopback, by address and by name, before any request', () => {
    const { port } = report;
    assert.equal(report.strict.code, 0, report.strict.stderr);
    assert.deepEqual(report.strict.results, [
      { id: 'row0', status: 'failed', reason: 'blocked_address', detail: `row 1 (id row0): http://127.0.0.1:${port}/x.jpg?cli: 127.0.0.1 is loopback, ${STRICT}` },
      { id: 'row1', status: 'failed', reason: 'blocked_address', detail: `row 2 (id row1): http://localhost:${port}/x.jpg?cli: localhost resolves to 127.0.0.1, which is loopback, ${STRICT}` },
    ]);
    assert.equal(report.strict.imageRequests, 0);
  });

  it('through a proxy: literal addresses and NO_PROXY names are checked; other names are the proxy’s', () => {
    const { port } = report;
    assertBlocked(report.proxyLiteral, `169.254.169.254 is ${METADATA_KIND}, ${ALWAYS}`);
    assertBlocked(report.proxyNoProxyName, `metadata.test resolves to 169.254.169.254, which is ${METADATA_KIND}, ${ALWAYS}`);
    assert.deepEqual(report.proxyName, { ok: true, metadataConnections: 0 }, 'the proxy resolved localhost: not checked, as docs/network.md says');
    assert.deepEqual(report.proxyTunnels, { [`localhost:${port}`]: 1 });
  });

  it('a DNS lookup gets no longer than --connect-timeout', () => {
    assert.deepEqual(report.silentDns, { ok: false, reason: 'timeout_connect', detail: 'no connection within --connect-timeout 0.5 s (after 1 attempts)', metadataConnections: 0 });
    assert.ok(report.dnsQueries >= 1, 'the name was asked of the DNS server');
  });

  it('no connection ever reached the metadata address', () => {
    assert.equal(report.metadataConnections, 0);
    assert.deepEqual(report.metadataRequests, {});
  });
});
