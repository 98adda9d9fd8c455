// Never lose work: kill -9 at several moments and rerun, SIGTERM, overlapping runs, a
// stale lock, a full disk, reruns that retry only what is worth retrying. Real processes,
// a real server on 127.0.0.1, real disk.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { PHOTO_FILES } from './support/cdn.mjs';
import { countImages, startCli, waitFor } from './support/child.mjs';
import { outputFiles, readResults, runCli } from './support/run.mjs';
import { IS_ROOT, unlessMissing } from './support/needs.mjs';
import { server, useServerAndFolder, work } from './support/server-and-folder.mjs';

const PHOTOS = PHOTO_FILES;

useServerAndFolder();

/**
 * Writes `count` rows of real photos served after `delayMs`; each id has its own path.
 * @param {string} name @param {number} count @param {number} delayMs
 */
async function photoRows(name, count, delayMs) {
  const rows = Array.from({ length: count }, (_, i) => ({
    id: `${name}-${i}`,
    url: `${server.origin}/photo/${delayMs}/${PHOTOS[i % PHOTOS.length]}/${name}-${i}`,
    cogvlm_caption: `photo ${i} of ${name}`,
  }));
  const input = join(work.path, `${name}.ndjson`);
  await writeFile(input, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
  return { rows, input, pathOf: (/** @type {string} */ id) => `/photo/${delayMs}/${PHOTOS[Number(id.split('-').at(-1)) % PHOTOS.length]}/${id}` };
}

/** Ids the state records as saved, read with better-sqlite3 directly. @param {string} output */
function savedInState(output) {
  const path = join(output, '.pipeline', 'state.sqlite');
  if (!existsSync(path)) return new Set(); // killed before the state was created
  const db = new Database(path, { readonly: true });
  try {
    // Killed between creating the file and creating its tables: nothing saved yet.
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'samples'").get()) return new Set();
    return new Set(db.prepare("SELECT id FROM samples WHERE status = 'saved'").all().map((row) => /** @type {{ id: string }} */ (row).id));
  } finally {
    db.close();
  }
}

describe('crash safety', () => {
  test('killed with SIGKILL at several moments, reruns complete the set: every image once, whole, no saved id fetched again', async () => {
    const { rows, input, pathOf } = await photoRows('kill', 36, 60);
    const output = join(work.path, 'kill');
    const args = ['--input', input, '--output', output, '--concurrency', '4', '--quiet'];
    const killAfter = [async () => true, async () => (await countImages(output)) >= 3, async () => (await countImages(output)) >= 12];
    const protectedIds = new Map(); // id -> requests seen when it was recorded saved
    for (const [moment, ready] of killAfter.entries()) {
      const run = startCli(args);
      await waitFor(ready).catch((error) => {
        throw new Error(`run ${moment}: ${error.message}; it printed: ${run.stderr()}`);
      });
      if (moment === 0) await new Promise((resolve) => setTimeout(resolve, 300));
      run.child.kill('SIGKILL');
      const { signal } = await run.exited;
      assert.equal(signal, 'SIGKILL', `run ${moment} was killed, not finished`);
      for (const id of savedInState(output)) {
        if (!protectedIds.has(id)) protectedIds.set(id, server.requestsFor(pathOf(id)));
      }
    }
    assert.ok(protectedIds.size > 0 && protectedIds.size < rows.length, `killed mid-run (${protectedIds.size} saved)`);

    const final = await runCli(args);
    assert.equal(final.code, 0, final.stderr);

    const files = await outputFiles(output);
    const expected = rows.flatMap((row) => [`${row.id}.png`, `${row.id}.txt`]).sort();
    assert.deepEqual(files, expected, 'every id exactly once, no temporary or partial file');
    for (const row of rows) {
      const stats = await sharp(join(output, `${row.id}.png`)).stats(); // a full decode
      assert.equal(stats.channels.length, 3, row.id);
      assert.equal(await readFile(join(output, `${row.id}.txt`), 'utf8'), row.cogvlm_caption);
    }
    for (const [id, requests] of protectedIds) {
      assert.equal(server.requestsFor(pathOf(id)), requests, `${id} was recorded saved, and not fetched again`);
    }
    for (const row of rows) assert.ok(server.requestsFor(pathOf(row.id)) <= 4, `${row.id}: at most one request per run`);
    assert.equal(savedInState(output).size, rows.length, 'state and files agree');
  });

  test('a saved sample whose file was deleted is fetched again; a file the state lacks is rewritten', async () => {
    const { rows, input, pathOf } = await photoRows('agree', 4, 0);
    const output = join(work.path, 'agree');
    assert.equal((await runCli(['--input', input, '--output', output, '--quiet'])).code, 0);
    const { rm } = await import('node:fs/promises');
    await rm(join(output, 'agree-1.png'));
    const db = new Database(join(output, '.pipeline', 'state.sqlite'));
    db.prepare("DELETE FROM samples WHERE id = 'agree-2'").run();
    db.close();
    const results = join(work.path, 'agree-results.ndjson');
    assert.equal((await runCli(['--input', input, '--output', output, '--quiet', '--results', results])).code, 0);
    const byId = new Map((await readResults(results)).map((result) => [result.id, result]));
    assert.equal(byId.get('agree-0')?.reason, 'already_saved');
    assert.equal(byId.get('agree-1')?.status, 'saved');
    assert.equal(byId.get('agree-2')?.status, 'saved');
    assert.equal(server.requestsFor(pathOf('agree-0')), 1);
    assert.equal(server.requestsFor(pathOf('agree-1')), 2);
    assert.deepEqual(await outputFiles(output), rows.flatMap((row) => [`${row.id}.png`, `${row.id}.txt`]).sort());
  });
});

describe('signals', () => {
  test('SIGTERM mid-run: in-flight rows finish, summary written, exit 143, no temporary files; a rerun finishes the rest', async () => {
    const { rows, input } = await photoRows('term', 30, 100);
    const output = join(work.path, 'term');
    const summaryPath = join(work.path, 'term-summary.json');
    const run = startCli(['--input', input, '--output', output, '--concurrency', '4', '--summary', summaryPath]);
    await waitFor(async () => (await countImages(output)) >= 3);
    run.child.kill('SIGTERM');
    const { code, stderr } = await run.exited;
    assert.equal(code, 143, stderr);
    assert.match(stderr, /stopping: no new rows/);
    assert.match(stderr, /^stopped in .* s: \d+ rows, \d+ saved/m);
    const summary = JSON.parse(await readFile(summaryPath, 'utf8'));
    assert.equal(summary.interrupted, true);
    assert.ok(summary.saved >= 3 && summary.saved < rows.length, `saved ${summary.saved} before stopping`);
    assert.equal(summary.failed, 0, 'rows in flight finished within the grace period');
    const files = await outputFiles(output);
    assert.equal(files.filter((name) => name.startsWith('.')).length, 0, `no temporary files: ${files}`);
    assert.equal(files.length, summary.saved * 2);

    const rerun = await runCli(['--input', input, '--output', output, '--quiet']);
    assert.equal(rerun.code, 0);
    assert.match(rerun.stderr, new RegExp(`${rows.length - summary.saved} saved, 0 failed, ${summary.saved} skipped \\(already_saved ${summary.saved}\\)`));
  });

  test('after the grace period, rows still in flight are abandoned as interrupted and tried by the next run', async () => {
    const input = join(work.path, 'grace.ndjson');
    await writeFile(input, [0, 1].map((i) => `${JSON.stringify({ id: `g${i}`, url: `${server.origin}/stall-body/grace-${i}`, cogvlm_caption: 'x' })}\n`).join(''));
    const output = join(work.path, 'grace');
    const run = startCli(['--input', input, '--output', output, '--grace', '0.3', '--idle-timeout', '60', '--results', join(work.path, 'grace-results.ndjson')]);
    await waitFor(() => server.requestsFor('/stall-body/grace-1') > 0);
    const stoppedAt = Date.now();
    run.child.kill('SIGINT');
    const { code, stderr } = await run.exited;
    assert.equal(code, 130, stderr);
    assert.ok(Date.now() - stoppedAt < 10_000, 'did not wait for the stalled bodies');
    assert.match(stderr, /2 failed \(interrupted 2\)/);
    const db = new Database(join(output, '.pipeline', 'state.sqlite'), { readonly: true });
    const { n } = /** @type {{ n: number }} */ (db.prepare('SELECT count(*) AS n FROM samples').get());
    assert.equal(n, 0, 'interrupted rows are not held against the samples');
    db.close();
  });

  for (const [signal, exitCode] of /** @type {const} */ ([['SIGTERM', 143], ['SIGINT', 130]])) {
    test(`a second ${signal} exits at once, not after the grace period`, async () => {
      const input = join(work.path, `twice-${signal}.ndjson`);
      const path = `/stall-body/twice-${signal}`;
      await writeFile(input, `${JSON.stringify({ id: 't', url: `${server.origin}${path}`, cogvlm_caption: 'x' })}\n`);
      // SIGTERM through the restarted process (the parent forwards it), SIGINT to one process.
      const run = startCli(['--input', input, '--output', join(work.path, `twice-${signal}`), '--grace', '60', '--idle-timeout', '60'], { asUserWould: signal === 'SIGTERM' });
      await waitFor(() => server.requestsFor(path) > 0);
      run.child.kill(signal);
      await waitFor(() => run.stderr().includes('stopping'));
      const second = Date.now();
      run.child.kill(signal);
      const { code } = await run.exited;
      assert.equal(code, exitCode);
      // The grace period is 60 s; "at once" is anything well under it, on any machine.
      assert.ok(Date.now() - second < 15_000, `exited ${Date.now() - second} ms after the second ${signal}`);
    });
  }
});

describe('one run at a time', () => {
  test('a second run on the same output exits 75 naming the running process', async () => {
    const { input } = await photoRows('lock', 12, 200);
    const output = join(work.path, 'lock');
    const first = startCli(['--input', input, '--output', output, '--concurrency', '2', '--quiet']);
    await waitFor(async () => existsSync(join(output, '.pipeline', 'lock')));
    const second = await runCli(['--input', input, '--output', output]);
    assert.equal(second.code, 75);
    const named = /another run \(pid (\d+) on .*\) is writing to this output/.exec(second.stderr);
    assert.ok(named, second.stderr);
    // The named process is the running one: the command itself, or the worker it runs
    // with its process settings (see src/process-settings.ts).
    const pid = Number(named[1]);
    const parent = Number(/PPid:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''))?.[1]);
    assert.ok(pid === first.child.pid || parent === first.child.pid, `pid ${pid} belongs to the first run (${first.child.pid})`);
    first.child.kill('SIGTERM');
    await first.exited;
  });

  test('the run has its process settings (thread pool, allocator, V8 heap), and a value the user set wins', async () => {
    /** The process that holds the lock: the one doing the work. */
    const worker = async (output) => {
      const lock = join(output, '.pipeline', 'lock');
      await waitFor(async () => existsSync(lock) && (await readFile(lock, 'utf8')).endsWith('\n'));
      const { pid } = JSON.parse(await readFile(lock, 'utf8'));
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
      return { pid, cmdline, environ };
    };
    const { input } = await photoRows('settings', 6, 300);
    const defaults = startCli(['--input', input, '--output', join(work.path, 'settings-default'), '--concurrency', '1', '--image-concurrency', '3', '--quiet'], { asUserWould: true });
    const byDefault = await worker(join(work.path, 'settings-default'));
    defaults.child.kill('SIGTERM');
    await defaults.exited;
    assert.notEqual(byDefault.pid, defaults.child.pid, 'restarted with the settings');
    assert.ok(byDefault.cmdline.includes('--initial-old-space-size=64'), byDefault.cmdline.join(' '));
    assert.ok(byDefault.environ.includes('MALLOC_ARENA_MAX=2'), 'glibc arenas limited');
    assert.ok(byDefault.environ.includes('UV_THREADPOOL_SIZE=7'), 'a thread for each of the 3 image slots, and the 4 libuv keeps by default');

    // Everything given but the pool: the restart still happens, for the pool alone.
    const poolOnly = startCli(['--input', input, '--output', join(work.path, 'settings-pool'), '--concurrency', '1', '--quiet'], {
      nodeFlags: ['--initial-old-space-size=64'],
      env: { ...process.env, MALLOC_ARENA_MAX: '2', UV_THREADPOOL_SIZE: undefined },
    });
    const withPool = await worker(join(work.path, 'settings-pool'));
    poolOnly.child.kill('SIGTERM');
    await poolOnly.exited;
    assert.notEqual(withPool.pid, poolOnly.child.pid);
    assert.ok(withPool.environ.some((entry) => /^UV_THREADPOOL_SIZE=\d+$/.test(entry) && Number(entry.split('=')[1]) >= availableParallelism() + 4), withPool.environ.join(' '));

    const own = startCli(['--input', input, '--output', join(work.path, 'settings-own'), '--concurrency', '1', '--image-concurrency', '4'], {
      nodeFlags: ['--initial_old_space_size=32'],
      env: { ...process.env, MALLOC_ARENA_MAX: '4', UV_THREADPOOL_SIZE: '2' },
    });
    const withOwn = await worker(join(work.path, 'settings-own'));
    own.child.kill('SIGTERM');
    const { stderr } = await own.exited;
    assert.equal(withOwn.pid, own.child.pid, 'nothing to add, so no second process');
    assert.ok(withOwn.cmdline.includes('--initial_old_space_size=32') && !withOwn.cmdline.includes('--initial-old-space-size=64'), withOwn.cmdline.join(' '));
    assert.ok(withOwn.environ.includes('MALLOC_ARENA_MAX=4'));
    assert.ok(withOwn.environ.includes('UV_THREADPOOL_SIZE=2'), 'the user\'s pool size is kept');
    assert.match(stderr, /^warning: UV_THREADPOOL_SIZE=2 is smaller than the 4 image slots: at most 2 images are decoded at once/m);
  });

  test('a lock left by a dead process is taken over', async () => {
    const { input } = await photoRows('stale', 2, 0);
    const output = join(work.path, 'stale');
    await mkdir(join(output, '.pipeline'), { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const hostname = execFileSync('hostname', { encoding: 'utf8' }).trim();
    await writeFile(join(output, '.pipeline', 'lock'), JSON.stringify({ pid: Number(dead.stdout), host: hostname, startedAt: '2026-01-01T00:00:00Z' }));
    const run = await runCli(['--input', input, '--output', output]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /2 saved/);
  });
});

describe('a full disk', () => {
  test('stops the run with exit 1 and a clear message, leaving nothing half-written', { skip: unlessMissing(IS_ROOT, 'root (to mount a small tmpfs)') }, async () => {
    const mount = join(work.path, 'tiny');
    await mkdir(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mount], { stdio: 'ignore' });
    try {
      const { input } = await photoRows('full', 12, 0);
      const output = join(mount, 'out');
      const run = await runCli(['--input', input, '--output', output, '--concurrency', '2']);
      assert.equal(run.code, 1, run.stderr);
      // Whichever write hits the full disk first, an image or the resume state, says so.
      assert.match(run.stderr, new RegExp(`^error: cannot write (the resume state )?${output}/\\S+: (ENOSPC: no space left on device|database or disk is full)`, 'm'));
      const files = await outputFiles(output);
      assert.equal(files.filter((name) => name.startsWith('.')).length, 0, `no temporary files: ${files}`);
      for (const name of files.filter((file) => file.endsWith('.png'))) {
        await sharp(join(output, name)).stats(); // every image with a real name is whole
        assert.ok(files.includes(name.replace(/\.png$/, '.txt')), `${name} has its caption`);
      }
    } finally {
      execFileSync('umount', [mount]);
    }
  });
});

describe('reruns', () => {
  test('retry only transient failures, up to --max-attempts runs; --retry-failed retries the rest once', async () => {
    const input = join(work.path, 'rerun.ndjson');
    const paths = { ok: '/ok/rr-ok', gone: '/status/404/rr-gone', heals: '/flaky/502/1/rr-heals', broken: '/status/500/rr-broken', html: '/html/rr-html' };
    await writeFile(input, Object.entries(paths).map(([id, path]) => `${JSON.stringify({ id, url: server.origin + path, cogvlm_caption: id })}\n`).join(''));
    const output = join(work.path, 'rerun');
    const results = join(work.path, 'rerun-results.ndjson');
    const runOnce = async (...extra) => {
      const run = await runCli(['--input', input, '--output', output, '--retries', '0', '--results', results, '--quiet', ...extra]);
      assert.equal(run.code, 0, run.stderr);
      return new Map((await readResults(results)).map((result) => [result.id, `${result.status}${result.reason ? `:${result.reason}` : ''}`]));
    };
    const requests = () => Object.fromEntries(Object.entries(paths).map(([id, path]) => [id, server.requestsFor(path)]));

    assert.deepEqual(Object.fromEntries(await runOnce('--max-attempts', '2')), {
      ok: 'saved', gone: 'failed:http_404', heals: 'failed:http_502', broken: 'failed:http_500', html: 'failed:not_image',
    });
    assert.deepEqual(Object.fromEntries(await runOnce('--max-attempts', '2')), {
      ok: 'skipped:already_saved', gone: 'skipped:failed_before', heals: 'saved', broken: 'failed:http_500', html: 'skipped:failed_before',
    });
    assert.deepEqual(requests(), { ok: 1, gone: 1, heals: 2, broken: 2, html: 1 });
    assert.deepEqual(Object.fromEntries(await runOnce('--max-attempts', '2')), {
      ok: 'skipped:already_saved', gone: 'skipped:failed_before', heals: 'skipped:already_saved', broken: 'skipped:failed_before', html: 'skipped:failed_before',
    });
    assert.deepEqual(requests(), { ok: 1, gone: 1, heals: 2, broken: 2, html: 1 }, 'nothing fetched: broken has failed 2 runs');
    await runOnce('--max-attempts', '2', '--retry-failed');
    assert.deepEqual(requests(), { ok: 1, gone: 2, heals: 2, broken: 3, html: 2 }, '--retry-failed tries every failed id once more');

    const status = await runCli(['status', '--output', output]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /saved: 2\nfailed: 3\n/);
    assert.match(status.stdout, /http_404: 1/);
    assert.match(status.stdout, /pending retries: 1\n/, 'broken has failed 3 runs of the default 5');
    assert.match(status.stdout, /last run: #4 .* \(finished\): 5 rows, 0 saved, 3 failed, 2 skipped/);
  });
});

describe('reporting', () => {
  test('plain progress lines off a terminal, and a Prometheus metrics file', async () => {
    const { rows, input } = await photoRows('report', 12, 150);
    const output = join(work.path, 'report');
    const metrics = join(work.path, 'pipeline.prom');
    const run = await runCli(['--input', input, '--output', output, '--log-every', '0.2', '--metrics-file', metrics, '--concurrency', '2']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /^progress: \d+ rows, \d+ saved, 0 failed, 0 skipped, [\d.]+ images\/s, [\d.]+ MB\/s in$/m);
    const text = await readFile(metrics, 'utf8');
    assert.match(text, new RegExp(`^photo_pipeline_saved_total ${rows.length}$`, 'm'));
    assert.match(text, /^photo_pipeline_in_flight 0$/m);
    assert.match(text, /^# TYPE photo_pipeline_failed_total counter$/m);
    const quiet = await runCli(['--input', input, '--output', output, '--quiet', '--log-every', '0.05']);
    assert.equal(quiet.stderr.trim().split('\n').length, 1, `--quiet prints only the summary: ${quiet.stderr}`);
  });
});
