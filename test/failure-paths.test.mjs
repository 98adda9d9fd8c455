// Failure paths a long unattended run meets: a full disk under every built-in sink, a
// sink whose writes or close fail, a fatal error while work is in flight. Each stops
// with exit 1 and one line naming the cause, leaves nothing half-written, and the next
// run completes the set.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, openAsBlob } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import * as arrow from 'apache-arrow';
import { ParquetFile } from 'parquet-wasm';
import tar from 'tar-stream';
import { PHOTO_FILES } from './support/cdn.mjs';
import { killRun, startCli, waitFor } from './support/child.mjs';
import { CLI, runCli } from './support/run.mjs';
import { loadLikeSimpleTuner } from './support/simpletuner.mjs';
import { IS_ROOT, unlessMissing } from './support/needs.mjs';
import { server, useServerAndFolder, work } from './support/server-and-folder.mjs';

useServerAndFolder();

const needsRoot = unlessMissing(IS_ROOT, 'root (to mount a small tmpfs)');

/** @param {string} name @param {number} count @param {number} [delayMs] */
async function photoRows(name, count, delayMs = 0) {
  const ids = Array.from({ length: count }, (_, i) => `${name}${i}`);
  const input = join(work.path, `${name}.ndjson`);
  const lines = ids.map((id, i) => JSON.stringify({ id, url: `${server.origin}/photo/${delayMs}/${PHOTO_FILES[i % PHOTO_FILES.length]}/${id}`, cogvlm_caption: `photo ${id}` }));
  await writeFile(input, `${lines.join('\n')}\n`);
  return { ids, input };
}

/** What an error exit printed must be one line, with no stack trace or unhandled event. @param {string} stderr */
function assertOneLineError(stderr) {
  const errors = stderr.split('\n').filter((line) => line.startsWith('error: '));
  assert.equal(errors.length, 1, stderr);
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(stderr, /Emitted 'error' event|Unhandled|uncaught/i);
  return errors[0] ?? '';
}

/** Hidden temporary files (`.name.partial-pid-n`) anywhere in the output but the state folder. @param {string} output */
async function temporaryFiles(output) {
  return (await readdir(output)).filter((name) => name.includes('.partial-'));
}

/** The sample keys each shard holds. @param {string} output @param {'tar' | 'parquet'} extension */
async function shardKeys(output, extension) {
  /** @type {string[][]} */
  const shards = [];
  for (const name of (await readdir(output)).filter((file) => file.endsWith(`.${extension}`)).sort()) {
    const path = join(output, name);
    if (extension === 'parquet') {
      const file = await ParquetFile.fromFile(await openAsBlob(path));
      const table = arrow.tableFromIPC((await file.read()).intoIPCStream());
      shards.push([...(table.getChild('key')?.toArray() ?? [])].map(String));
    } else {
      const extract = tar.extract();
      createReadStream(path).pipe(extract);
      /** @type {string[]} */
      const keys = [];
      for await (const entry of extract) {
        if (entry.header.name.endsWith('.txt')) keys.push(entry.header.name.slice(0, -4));
        entry.resume();
      }
      shards.push(keys);
    }
    const stats = JSON.parse(await readFile(join(output, name.replace(/\.\w+$/, '_stats.json')), 'utf8'));
    assert.equal(stats.samples, shards.at(-1)?.length, `${name}: its stats count its samples`);
  }
  return shards;
}

describe('a full disk', () => {
  for (const sink of ['dir', 'webdataset', 'parquet']) {
    test(`--sink ${sink}: exit 1 naming the file, nothing half-written; with room again the rerun completes the set, each sample once`, { skip: needsRoot }, async () => {
      const mount = join(work.path, `tiny-${sink}`);
      await mkdir(mount);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount]);
      try {
        const { ids, input } = await photoRows(`${sink}-full-`, 12);
        const output = join(mount, 'out');
        const args = ['--input', input, '--output', output, '--sink', sink, '--samples-per-shard', '3', '--resolution', '512', '--concurrency', '2'];
        const full = await runCli(args);
        assert.equal(full.code, 1, full.stderr);
        const line = assertOneLineError(full.stderr);
        assert.match(line, new RegExp(`^error: cannot write (the resume state )?${output}/\\S+: (ENOSPC: no space left on device|database or disk is full)`));
        assert.deepEqual(await temporaryFiles(output), [], 'no temporary file left');

        execFileSync('mount', ['-o', 'remount,size=64m', mount]);
        const rerun = await runCli([...args, '--quiet']);
        assert.equal(rerun.code, 0, rerun.stderr);
        assert.deepEqual(await temporaryFiles(output), []);
        if (sink === 'dir') {
          const { samples, skipped } = await loadLikeSimpleTuner(join(output, 'simpletuner-dataloader.json'));
          assert.deepEqual([...samples.keys()].map((path) => path.slice(output.length + 1)).sort(), ids.map((id) => `${id}.png`).sort());
          assert.equal(skipped.metadata_missing.length, 0);
        } else {
          const shards = await shardKeys(output, sink === 'webdataset' ? 'tar' : 'parquet');
          const keys = shards.flat();
          assert.deepEqual([...keys].sort(), [...ids].sort(), `every sample, once, over ${shards.length} shards`);
        }
      } finally {
        execFileSync('umount', [mount]);
      }
    });
  }

  test('a read-only output stops the run at its first write, naming it', { skip: needsRoot }, async () => {
    const mount = join(work.path, 'readonly');
    await mkdir(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount]);
    try {
      const { input } = await photoRows('ro-', 3);
      const output = join(mount, 'out');
      assert.equal((await runCli(['--input', input, '--output', output, '--quiet', '--resolution', '64'])).code, 0);
      execFileSync('mount', ['-o', 'remount,ro', mount]);
      const { input: more } = await photoRows('ro-more-', 3);
      const run = await runCli(['--input', more, '--output', output]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(assertOneLineError(run.stderr), /read-only|EROFS|readonly/i);
    } finally {
      execFileSync('umount', [mount]);
    }
  });
});

describe('a sink that fails', () => {
  /**
   * A sink module that logs every call to `log` (one JSON line each) and fails as told.
   * @param {string} name @param {{ failWriteAt?: number, failClose?: boolean }} behaviour
   */
  async function loggingSink(name, behaviour) {
    const path = join(work.path, `${name}.mjs`);
    const log = join(work.path, `${name}.log`);
    await writeFile(
      path,
      `import { appendFileSync } from 'node:fs';
const note = (event) => appendFileSync(${JSON.stringify(log)}, JSON.stringify(event) + '\\n');
export default () => {
  let writes = 0;
  return {
    concurrency: 4,
    async write(sample) {
      const n = ++writes;
      note({ event: 'write', n, id: sample.id });
      if (n === ${behaviour.failWriteAt ?? 0}) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        note({ event: 'failed', n });
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      note({ event: 'written', n });
    },
    async close() {
      note({ event: 'close' });
      ${behaviour.failClose ? "throw new Error('the manifest could not be flushed');" : ''}
    },
  };
};
`,
    );
    return { path, events: async () => (await readFile(log, 'utf8')).trim().split('\n').map((line) => JSON.parse(line)) };
  }

  test('a write that fails with EIO stops the run; writes in flight settle before close, which runs once, last', async () => {
    const sink = await loggingSink('eio-sink', { failWriteAt: 3 });
    const { input } = await photoRows('eio-', 16);
    const output = join(work.path, 'eio');
    const run = await runCli(['--input', input, '--output', output, '--sink', sink.path, '--resolution', '64', '--concurrency', '8']);
    assert.equal(run.code, 1, run.stderr);
    assert.match(assertOneLineError(run.stderr), /^error: EIO: i\/o error, write$/);
    const events = await sink.events();
    assert.equal(events.filter((event) => event.event === 'close').length, 1, 'close once');
    assert.equal(events.at(-1)?.event, 'close', 'close last, after every write settled');
    const started = events.filter((event) => event.event === 'write').map((event) => event.n);
    const settled = events.filter((event) => event.event === 'written' || event.event === 'failed').map((event) => event.n);
    assert.ok(started.length >= 2, `writes were in flight when one failed: ${JSON.stringify(events)}`);
    assert.deepEqual([...settled].sort(), [...started].sort(), 'every write that started settled before close');

    // The state says what happened: the writes that settled are saved, the run ended in an error.
    const status = await runCli(['status', '--output', output]);
    assert.match(status.stdout, /\(error: EIO: i\/o error, write\)/);
  });

  test('a close that fails is an error exit, recorded as such', async () => {
    const sink = await loggingSink('close-sink', { failClose: true });
    const { input } = await photoRows('close-', 2);
    const output = join(work.path, 'close');
    const run = await runCli(['--input', input, '--output', output, '--sink', sink.path, '--resolution', '64']);
    assert.equal(run.code, 1, run.stderr);
    assert.match(assertOneLineError(run.stderr), /^error: .*the manifest could not be flushed$/);
    const status = await runCli(['status', '--output', output]);
    assert.match(status.stdout, /\(error: .*the manifest could not be flushed\)/);
  });
});

describe('found at start', () => {
  test('bad values are usage errors: exit 2 with a message naming the flag, before any request', async () => {
    const { input } = await photoRows('usage-', 2);
    const requestsBefore = server.totalRequests();
    const folder = join(work.path, 'usage-folder');
    await mkdir(folder, { recursive: true });
    const cases = [
      [['--megapixels', '0'], /--megapixels must be a number above 0/],
      [['--resolution', '0'], /--resolution must be a whole number from 8/],
      [['--round', '0'], /--round must be a whole number from 1/],
      [['--concurrency', '-1'], /--concurrency must be a whole number from 1/],
      [['--concurrency', '1.5'], /--concurrency.*expected a whole number/],
      [['--samples-per-shard', '0'], /--samples-per-shard must be a whole number from 1/],
      [['--sink', 'toString'], /cannot load sink module toString/],
      [['--results', join(work.path, 'no-such-folder', 'results.ndjson')], /--results .*results\.ndjson cannot be written: ENOENT/],
      [['--summary', folder], /--summary .*usage-folder cannot be written: it is a folder/],
      [['--metrics-file', join(work.path, 'no-such-folder', 'metrics.prom')], /--metrics-file .*metrics\.prom cannot be written: ENOENT/],
      [['--dataloader-root', 'relative/path'], /--dataloader-root must be an absolute path/],
    ];
    for (const [flags, message] of /** @type {Array<[string[], RegExp]>} */ (cases)) {
      const run = await runCli(['--input', input, '--output', join(work.path, 'usage'), ...flags]);
      assert.equal(run.code, 2, `${flags.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, flags.join(' '));
      assertOneLineError(run.stderr.replace(/^.*\(use --help.*$/m, ''));
    }
    assert.equal(server.totalRequests(), requestsBefore, 'no request was made');
  });

  test('report files inside the output folder work on a first run, before the folder exists', async () => {
    const { input } = await photoRows('reports-inside-', 1);
    const output = join(work.path, 'reports-inside', 'out');
    const run = await runCli(['--input', input, '--output', output, '--quiet', '--resolution', '64', '--results', join(output, 'results.ndjson'), '--summary', join(output, 'summary.json'), '--metrics-file', join(output, 'run.prom')]);
    assert.equal(run.code, 0, run.stderr);
    for (const name of ['results.ndjson', 'summary.json', 'run.prom']) assert.ok(existsSync(join(output, name)), name);
  });

  test('a metrics file that stops being writable mid-run is a warning; the run finishes and says so', async () => {
    const { input } = await photoRows('metrics-', 4, 300);
    const folder = join(work.path, 'metrics-folder');
    await mkdir(folder);
    const output = join(work.path, 'metrics-output');
    const run = startCli(['--input', input, '--output', output, '--metrics-file', join(folder, 'run.prom'), '--concurrency', '1', '--resolution', '64']);
    await waitFor(() => run.stderr().length > 0 || server.requestsFor(`/photo/300/${PHOTO_FILES[0]}/metrics-0`) > 0);
    await rm(folder, { recursive: true });
    const { code, stderr } = await run.exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^warning: cannot write the metrics file .*run\.prom: /m);
    assert.match(stderr, /4 saved/);
    const status = await runCli(['status', '--output', output]);
    assert.match(status.stdout, /\(finished\)/);
  });
});

describe('one run per output', () => {
  test('with --no-resume too: a second run exits 75 instead of writing the same shards', async () => {
    const { input } = await photoRows('lock-', 6, 300);
    const output = join(work.path, 'lock-no-resume');
    const first = startCli(['--input', input, '--output', output, '--no-resume', '--sink', 'webdataset', '--concurrency', '1']);
    try {
      await waitFor(() => existsSync(join(output, '.pipeline', 'lock')));
      const second = await runCli(['--input', input, '--output', output, '--no-resume', '--sink', 'webdataset']);
      assert.equal(second.code, 75, second.stderr);
      assert.match(second.stderr, /another run \(pid \d+ .*\) is writing to this output/);
    } finally {
      await killRun(first, output);
    }
  });
});

describe('light commands', () => {
  const denyHeavy = new URL('./support/deny-heavy.mjs', import.meta.url).pathname;
  test('--help, --version and status load none of sharp, undici and parquet-wasm; a run says it needs them', async () => {
    const { input } = await photoRows('light-', 1);
    const output = join(work.path, 'light');
    assert.equal((await runCli(['--input', input, '--output', output, '--quiet', '--resolution', '64'])).code, 0);
    const cli = (/** @type {string[]} */ ...args) => spawnSync(process.execPath, ['--import', denyHeavy, CLI, ...args], { encoding: 'utf8' });
    assert.match(cli('--help').stdout, /Usage: photo-concept-pipeline/);
    assert.equal(cli('--version').stdout.trim(), '0.1.0');
    const status = cli('status', '--output', output);
    assert.equal(status.status, 0, status.stderr);
    assert.match(status.stdout, /saved: 1/);
    const run = cli('--input', input, '--output', join(work.path, 'light-run'));
    assert.equal(run.status, 1);
    assert.match(assertOneLineError(run.stderr), /^error: a run needs sharp, undici and parquet-wasm, and one of them could not be loaded: .*denied by the test/);
  });

  test('the default User-Agent names the tool and its version, and nothing else', async () => {
    /** @type {string[]} */
    const agents = [];
    const image = await readFile(new URL('../examples/photos/storm.jpg', import.meta.url));
    const agentServer = createServer((request, response) => {
      agents.push(request.headers['user-agent'] ?? '');
      response.writeHead(200, { 'content-type': 'image/jpeg' }).end(image);
    });
    await new Promise((resolve) => agentServer.listen(0, '127.0.0.1', () => resolve(undefined)));
    try {
      const address = /** @type {import('node:net').AddressInfo} */ (agentServer.address());
      const input = join(work.path, 'agent.ndjson');
      await writeFile(input, `${JSON.stringify({ id: 'ua', url: `http://127.0.0.1:${address.port}/ua.jpg`, cogvlm_caption: 'ua' })}\n`);
      const run = await runCli(['--input', input, '--output', join(work.path, 'agent'), '--quiet', '--resolution', '64']);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(agents, ['photo-concept-pipeline/0.1.0']);
    } finally {
      agentServer.close();
    }
  });
});
