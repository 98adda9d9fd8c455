#!/usr/bin/env node
// The soak: the pipeline run the way a cron line runs it, for a long time, against a hostile
// server, and killed outright at random moments; then a check that nothing was lost,
// duplicated or left half-written. Not part of `npm test` nor CI: it takes 20 minutes.
//
//   npm run soak -- [--minutes 20] [--rows 3000] [--seed 1] [--sink dir|webdataset]
//                   [--subfolders 16] [--work DIR] [--keep]
//
// - The rows (a Parquet file) point at the fault-injecting server (test/support/faulty-server.mjs),
//   mixed as bench/faults.mjs mixes them: most are real photos; some fail first and heal on
//   retry (429 with Retry-After, 503, a reset connection, a cut body, redirects): all of
//   these are "good" and must end up stored exactly once; some fail for good (404, an HTML
//   page, a body that stalls until --idle-timeout): these must be recorded failed, never stored.
// - Every 2 to 5 s (seeded) `node dist/pipeline.js --input rows.parquet --output OUT ...` is
//   started as cron would start it: the program as a user runs it (a parent that restarts
//   itself with its process settings, and that child), whether or not a run is still going,
//   now and then twice at once. A start while another run holds the output must exit 75,
//   and no two runs may ever have the output's resume state open at the same time.
// - At random moments (seeded) a live run is killed with SIGKILL: the whole process group (a
//   reboot, the OOM killer), the parent alone (its child must then exit by itself and the
//   lock be taken over), or the child alone (the parent must die by the same signal).
// - After the time is up nothing is killed any more: the runs still going finish, then runs
//   are started until none has anything left to retry, and one more must have nothing to do
//   (exit 0, nothing saved or failed, not one request). Then soak-verify.mjs checks the output.
//
// Figures (runs, exits, kills, rows, refetches, anything lost) are printed as a Markdown
// table for docs/reliability.md. Exit code 0 when every check passed, 1 otherwise.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as wait } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { writeParquetRows } from '../dist/demo/dataset-files.js';
import { startFaultyServer } from '../test/support/faulty-server.mjs';
import { verifyOutput } from './soak-verify.mjs';

const CLI = new URL('../dist/pipeline.js', import.meta.url).pathname;
const PHOTOS = new URL('../examples/photos/', import.meta.url).pathname;

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '20' },
    rows: { type: 'string', default: '3000' },
    seed: { type: 'string', default: '1' },
    sink: { type: 'string', default: 'dir' },
    subfolders: { type: 'string', default: '16' },
    work: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const MINUTES = Number(flags.minutes);
const ROWS = Number(flags.rows);
const SEED = Number(flags.seed);
const SINK = flags.sink;
const SUBFOLDERS = SINK === 'dir' ? Number(flags.subfolders) : 0;
if (!(MINUTES > 0) || !Number.isInteger(ROWS) || ROWS < 1 || !Number.isInteger(SEED) || !['dir', 'webdataset'].includes(SINK ?? '') || !Number.isInteger(SUBFOLDERS)) {
  console.error('usage: node bench/soak.mjs [--minutes N] [--rows N] [--seed N] [--sink dir|webdataset] [--subfolders N] [--work DIR] [--keep]');
  process.exit(2);
}

/** Cron's period: a start every 2 to 5 s. */
const CRON_SECONDS = [2, 5];
/**
 * How often cron starts two runs at the same moment (an @reboot line and the periodic one,
 * or two users' lines for one output): the lock must still let only one of them write.
 */
const DOUBLE_START = 0.15;
/**
 * Time between kills: 2 to 30 s (16 s on average), so most runs die young and some live
 * long. Much more often and the runs make no progress at all: each run first tries again
 * the rows whose bodies stall (they fail transiently, and a killed run records nothing,
 * so they stay pending), and those hold every fetch slot for 4 attempts of --idle-timeout.
 */
const KILL_SECONDS = [2, 30];
/** How often each kind of kill is picked. */
const KILL_KINDS = [['group', 0.5], ['parent', 0.25], ['child', 0.25]];
/** A child whose parent was killed must be gone within this (it exits on losing its IPC channel). */
const ORPHAN_LIMIT_MS = 10_000;
/** A run (once nothing kills it) that takes longer than this is a hang. */
const HANG_MS = 20 * 60_000;
/** Runs started after the soak, at most, before none may have anything left to retry. */
const FINAL_RUNS = 8;

/**
 * The row mix: [kind, share, path]. Good kinds must end up stored exactly once; the others
 * must be recorded failed with `reason` and never stored.
 */
const PHOTO_NAMES = readFileSync(join(PHOTOS, 'INDEX.tsv'), 'utf8').trim().split('\n').slice(1).map((line) => line.split('\t')[0] ?? '');
const KINDS = [
  { kind: 'photo', share: 0.72, good: true, path: (key, pick) => `/photo/0/${pick(PHOTO_NAMES)}/${key}` },
  { kind: '429', share: 0.04, good: true, path: (key) => `/flaky/429/1/${key}?retry-after=1` },
  { kind: '503', share: 0.04, good: true, path: (key) => `/flaky/503/1/${key}` },
  { kind: 'reset', share: 0.04, good: true, path: (key) => `/reset/1/${key}` },
  { kind: 'cut', share: 0.04, good: true, path: (key) => `/cut/1/${key}` },
  { kind: 'redirect', share: 0.04, good: true, path: (key) => `/redirect/2/${key}` },
  { kind: '404', share: 0.03, good: false, reason: 'http_404', path: (key) => `/status/404/${key}` },
  { kind: 'html', share: 0.03, good: false, reason: 'not_image', path: (key) => `/html/${key}` },
  { kind: 'stall-body', share: 0.02, good: false, reason: 'timeout_body', path: (key) => `/stall-body/${key}` },
];

const random = mulberry32(SEED);
const between = ([low, high]) => low + (high - low) * random();
/** @template T @param {readonly T[]} list */
const pick = (list) => list[Math.floor(random() * list.length)];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A deadline to race against: it does not keep the soak alive once all else is done. */
const deadlineIn = (ms) => wait(ms, undefined, { ref: false });

const work = flags.work ?? (await mkdtemp(join(tmpdir(), 'pcp-soak-')));
await mkdir(work, { recursive: true });
const output = join(work, 'out');
const logPath = join(work, 'soak.log');
const log = createWriteStream(logPath, { flags: 'a' });
const server = await startFaultyServer();

// --- the rows -----------------------------------------------------------------------
const sizes = new Map(await Promise.all(PHOTO_NAMES.map(async (name) => {
  const { width = 0, height = 0 } = await sharp(join(PHOTOS, name)).metadata();
  return /** @type {const} */ ([name, { width, height }]);
})));
/** What each row must become; `caption` as it is stored. @type {Array<{ id: string, key: string, kind: string, good: boolean, reason?: string, url: string, caption: string }>} */
const rows = [];
const parquetRows = [];
for (let i = 0; i < ROWS; i++) {
  const entry = chooseKind(random());
  const key = `k${i}`;
  const path = entry.path(key, pick);
  const photo = path.startsWith('/photo/') ? path.split('/')[3] ?? 'storm.jpg' : 'storm.jpg';
  const { width, height } = sizes.get(photo) ?? { width: 0, height: 0 };
  // Captions as real ones are: commas, quotes, a second line, now and then a non-Latin word.
  const caption = `row ${i}: a ${entry.kind} photo, "as served"${i % 7 === 0 ? '\nwith a second line' : ''}${i % 11 === 0 ? ' — 写真' : ''}`;
  // A stored caption is one line (SimpleTuner reads one per line): newlines fold to a space.
  const stored = caption.replace(/[ \t]*[\r\n]+\s*/g, ' ').trim();
  rows.push({ id: String(i), key, kind: entry.kind, good: entry.good, ...(entry.reason ? { reason: entry.reason } : {}), url: server.origin + path, caption: stored });
  parquetRows.push({ id: i, url: server.origin + path, cogvlm_caption: caption, tags: null, width, height });
}
const input = join(work, 'rows.parquet');
await writeParquetRows(input, parquetRows, 500);

/** The cron line, word for word. */
const RUN_ARGS = [
  '--input', input, '--output', output, '--sink', SINK,
  ...(SINK === 'dir' ? ['--subfolders', String(SUBFOLDERS), '--metadata-every', '5'] : ['--samples-per-shard', '50']),
  '--idle-timeout', '2', '--log-every', '0',
];
// The process settings the program restarts itself with: a user's environment lacks them.
const RUN_ENV = { ...process.env };
for (const name of ['UV_THREADPOOL_SIZE', 'MALLOC_ARENA_MAX', 'NODE_OPTIONS']) delete RUN_ENV[name];

// --- the runs -----------------------------------------------------------------------
/**
 * @typedef {{ n: number, pid: number, startedAt: number, endedAt?: number, child?: number, childGoneAt?: number,
 *   code?: number | null, signal?: NodeJS.Signals | null, killed?: string, final?: boolean, stderr: string, exited: Promise<void> }} Run
 */
/** @type {Run[]} */
const runs = [];
/** Runs whose parent is running. @type {Set<Run>} */
const live = new Set();
/** Runs whose parent was killed alone and whose child has not left yet. @type {Set<Run>} */
const orphaned = new Set();
/** @type {string[]} */
const anomalies = [];
/** Kills by kind, and how many hit a run that held the output (past start-up, writing). */
const kills = { group: 0, parent: 0, child: 0, holdingLock: 0 };
/** How long the children of killed parents took to leave, in ms. */
const orphanExits = [];
/** Times two runs were seen writing the output at once. */
let sharedHolds = 0;
const startedAt = Date.now();
const elapsed = () => ((Date.now() - startedAt) / 1000).toFixed(1);

function anomaly(text) {
  anomalies.push(text);
  log.write(`[${elapsed()} s] ANOMALY: ${text}\n`);
  console.error(`ANOMALY: ${text}`);
}

/** Starts the cron line once. @param {string[]} [extra] @param {boolean} [final] */
function startRun(extra = [], final = false) {
  const proc = spawn(process.execPath, [CLI, ...RUN_ARGS, ...extra], { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: RUN_ENV });
  /** @type {Run} */
  const run = { n: runs.length + 1, pid: proc.pid ?? 0, startedAt: Date.now(), final, stderr: '', exited: Promise.resolve() };
  runs.push(run);
  live.add(run);
  proc.stderr.setEncoding('utf8').on('data', (chunk) => {
    run.stderr = (run.stderr + chunk).slice(-8000);
    log.write(chunk.split('\n').filter(Boolean).map((line) => `[run ${run.n}] ${line}\n`).join(''));
  });
  run.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
    run.code = code;
    run.signal = signal;
    run.endedAt = Date.now();
    live.delete(run);
    log.write(`[${elapsed()} s] run ${run.n} (pid ${run.pid}, child ${run.child ?? '-'}) exited ${signal ?? code}${run.killed ? ` (killed: ${run.killed})` : ''}\n`);
    judgeExit(run);
    resolve();
  }));
  void findChild(run);
  log.write(`[${elapsed()} s] run ${run.n} started (pid ${run.pid})\n`);
  return run;
}

/** The restarted child of a run's parent, as soon as it exists. @param {Run} run */
async function findChild(run) {
  while (live.has(run) && run.child === undefined) {
    try {
      const [child] = readFileSync(`/proc/${run.pid}/task/${run.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      if (child) run.child = child;
    } catch {
      return; // the parent is gone
    }
    if (run.child === undefined) await sleep(25);
  }
}

/** Whether a process is still running (a zombie is not), and still in the run's process group. */
function running(pid, group) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] !== 'Z' && fields[0] !== 'X' && Number(fields[2]) === group;
  } catch {
    return false;
  }
}

/**
 * What a run's exit says, checked against what was done to it. A kill can land just after
 * the run ended by itself: its own exit code counts then.
 * @param {Run} run
 */
function judgeExit(run) {
  const by = run.signal ?? run.code;
  if (run.signal === 'SIGKILL' && run.killed) return;
  if (run.signal) return anomaly(`run ${run.n} ended by ${run.signal}${run.killed ? '' : ', and nothing killed it'}: ${lastLine(run)}`);
  if (run.code === 0) {
    // The program restarts itself with its process settings: a run that did not, ran without them.
    if (run.child === undefined) anomaly(`run ${run.n} finished without restarting itself with its process settings`);
    return;
  }
  if (run.code === 75) {
    // "another run (pid N ...)": N must be a run of ours that was alive, never this one itself.
    const owner = Number(/another run \(pid (\d+)/.exec(run.stderr)?.[1]);
    if (!owner) return; // "another run keeps taking it": a lost race, also a 75
    const goneAt = (other) => (orphaned.has(other) ? Infinity : other.childGoneAt ?? other.endedAt ?? Infinity);
    const ours = runs.find((other) => other !== run && (other.pid === owner || other.child === owner) && goneAt(other) >= run.startedAt - 1000);
    if (!ours) anomaly(`run ${run.n} exited 75 naming pid ${owner}, which is no live run of ours${owner === run.child ? ' (it is the run itself)' : ''}: ${lastLine(run)}`);
    return;
  }
  anomaly(`run ${run.n} exited ${by}${run.killed ? ` although it was killed (${run.killed})` : ''}: ${lastLine(run)}`);
}

const lastLine = (run) => run.stderr.trim().split('\n').at(-1) ?? '';

/** Kills a run: its process group, its parent alone, or its child alone. @param {Run} run @param {string} kind */
function kill(run, kind) {
  // Not restarted yet, or its child has ended (its pid may be another process's by now).
  if (kind === 'child' && (run.child === undefined || !running(run.child, run.pid))) kind = 'group';
  run.killed = kind;
  kills[kind]++;
  if (holdsLock(run)) kills.holdingLock++;
  log.write(`[${elapsed()} s] kill ${kind} of run ${run.n}\n`);
  try {
    if (kind === 'group') process.kill(-run.pid, 'SIGKILL');
    else if (kind === 'parent') process.kill(run.pid, 'SIGKILL');
    else process.kill(/** @type {number} */ (run.child), 'SIGKILL');
  } catch {
    // it ended just now
  }
  if (kind === 'parent') void watchOrphan(run);
}

/** Whether the run's process holds the output's lock. @param {Run} run */
function holdsLock(run) {
  try {
    const { pid } = JSON.parse(readFileSync(join(output, '.pipeline', 'lock'), 'utf8'));
    return pid === run.child || pid === run.pid;
  } catch {
    return false;
  }
}

/** The child of a killed parent must leave by itself, soon. @param {Run} run */
async function watchOrphan(run) {
  await run.exited;
  const child = run.child;
  if (child === undefined) return;
  const killedAt = Date.now();
  orphaned.add(run);
  while (running(child, run.pid)) {
    if (Date.now() - killedAt > ORPHAN_LIMIT_MS) {
      anomaly(`run ${run.n}: its child ${child} was still running ${ORPHAN_LIMIT_MS / 1000} s after its parent was killed`);
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // gone
      }
      break;
    }
    await sleep(20);
  }
  run.childGoneAt = Date.now();
  orphaned.delete(run);
  orphanExits.push(run.childGoneAt - killedAt);
}

/**
 * Two runs writing the output at once would defeat the lock. A run opens the resume state
 * only once it holds the lock, and closes it before letting go: so every 100 ms, the runs
 * whose process has `.pipeline/state.sqlite` open are the runs holding the output, and there
 * must never be two.
 */
function watchHolders() {
  const reported = new Set();
  let state = '';
  const timer = setInterval(() => {
    try {
      state ||= join(realpathSync(output), '.pipeline', 'state.sqlite'); // what /proc shows: the real path
    } catch {
      return; // no output yet
    }
    const holders = [...live, ...orphaned].filter((run) => {
      const pid = run.child ?? run.pid;
      try {
        return readdirSync(`/proc/${pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${pid}/fd/${fd}`) === state;
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    });
    if (holders.length < 2) return;
    const pair = holders.map((run) => run.n).join(' and ');
    if (reported.has(pair)) return;
    reported.add(pair);
    sharedHolds++;
    anomaly(`runs ${pair} write the output at the same time (both have its resume state open): the lock let two in`);
  }, 100);
  return () => clearInterval(timer);
}

/** Waits until no process of any run is left (parents and children). */
async function allGone(limitMs) {
  const until = Date.now() + limitMs;
  for (;;) {
    const left = [...live, ...orphaned];
    if (left.length === 0) return;
    if (Date.now() > until) {
      anomaly(`runs ${left.map((run) => run.n).join(', ')} still running after ${limitMs / 60_000} min: a hang`);
      for (const run of left) kill(run, 'group');
      await sleep(1000);
      return;
    }
    await sleep(200);
  }
}

// --- the soak -----------------------------------------------------------------------
console.error(`soak: ${MINUTES} min, ${ROWS} rows, seed ${SEED}, sink ${SINK}${SINK === 'dir' ? `, --subfolders ${SUBFOLDERS}` : ''}; work ${work} (log: ${logPath})`);
const deadline = startedAt + MINUTES * 60_000;
let soaking = true;
let doubleStarts = 0;
const stopWatchingHolders = watchHolders();

const cron = (async () => {
  while (Date.now() < deadline) {
    startRun();
    if (random() < DOUBLE_START) {
      startRun();
      doubleStarts++;
    }
    await sleep(between(CRON_SECONDS) * 1000);
  }
})();
const killer = (async () => {
  for (;;) {
    await sleep(between(KILL_SECONDS) * 1000);
    if (!soaking || Date.now() >= deadline) return;
    const candidates = [...live];
    if (candidates.length === 0) continue;
    kill(pick(candidates), chooseWeighted(KILL_KINDS));
  }
})();
const progress = setInterval(() => {
  const saved = savedSoFar();
  console.error(`[${elapsed()} s] runs ${runs.length}, kills ${kills.group + kills.parent + kills.child} (${kills.holdingLock} while writing), live ${live.size}, saved ${saved ?? '?'} of ${rows.filter((row) => row.good).length} good rows`);
}, 60_000);

await Promise.all([cron, killer]);
soaking = false;
const soakMinutes = (Date.now() - startedAt) / 60_000;
const savedDuringSoak = savedSoFar() ?? 0;
console.error(`[${elapsed()} s] the soak is over: no more kills; waiting for the runs still going`);
await allGone(HANG_MS);

// The end: runs until none has anything left to retry, then one that must have nothing to do.
const finalRuns = [];
for (let i = 0; i < FINAL_RUNS; i++) {
  const run = startRun(['--summary', join(work, `final-${i}.json`)], true);
  finalRuns.push(run);
  await Promise.race([run.exited, deadlineIn(HANG_MS)]);
  if (live.has(run)) {
    anomaly(`final run ${run.n} still running after ${HANG_MS / 60_000} min: a hang`);
    kill(run, 'group');
    await run.exited;
    break;
  }
  if (run.code !== 0) break; // judged already
  if (pendingRetries() === 0) break;
}
const requestsBefore = server.totalRequests();
const idle = startRun(['--summary', join(work, 'final-idle.json')], true);
finalRuns.push(idle);
await Promise.race([idle.exited, deadlineIn(HANG_MS)]);
const idleSummary = await readFile(join(work, 'final-idle.json'), 'utf8').then(JSON.parse, () => undefined);
if (idle.code !== 0) anomaly(`the last run exited ${idle.signal ?? idle.code}: ${lastLine(idle)}`);
else if (!idleSummary || idleSummary.saved !== 0 || idleSummary.failed !== 0) anomaly(`the last run had something to do: ${lastLine(idle)}`);
if (server.totalRequests() !== requestsBefore) anomaly(`the last run made ${server.totalRequests() - requestsBefore} request(s); it had nothing to fetch`);
clearInterval(progress);
stopWatchingHolders();

// --- the check ------------------------------------------------------------------------
const verdict = await verifyOutput({ output, rows, sink: SINK, subfolders: SUBFOLDERS, cli: CLI });
for (const problem of verdict.problems) anomaly(problem);
const fetches = countFetches(rows, server.log);
await server.close();
log.end();

const exits = { 0: 0, 75: 0, killed: 0, other: 0 };
for (const run of runs) {
  // By how each ended: a kill that landed after a run ended by itself does not count as one.
  if (run.signal === 'SIGKILL') exits.killed++;
  else if (run.code === 0 || run.code === 75) exits[run.code]++;
  else exits.other++;
}
const good = rows.filter((row) => row.good).length;
const summary = {
  minutes: soakMinutes,
  seed: SEED,
  sink: SINK,
  subfolders: SUBFOLDERS,
  rows: ROWS,
  goodRows: good,
  failingRows: ROWS - good,
  runsDuringSoak: runs.filter((run) => !run.final).length,
  savedDuringSoak,
  doubleStarts,
  sharedHolds,
  finalRuns: finalRuns.length,
  exits,
  kills,
  orphanExitMsMax: orphanExits.length ? Math.max(...orphanExits) : 0,
  orphanExitMsMedian: median(orphanExits),
  longestRunSeconds: Math.max(0, ...runs.map((run) => ((run.endedAt ?? Date.now()) - run.startedAt) / 1000)),
  ...verdict.figures,
  fetches,
  anomalies: anomalies.length,
};
await writeFile(join(work, 'soak-summary.json'), `${JSON.stringify({ ...summary, anomalyList: anomalies }, null, 2)}\n`);
console.log(markdown(summary));
if (anomalies.length > 0) {
  console.error(`\n${anomalies.length} problem(s):\n${anomalies.map((text) => `- ${text}`).join('\n')}\nwork folder kept: ${work}`);
  process.exitCode = 1;
} else if (!flags.keep && !flags.work) {
  await rm(work, { recursive: true, force: true });
} else {
  console.error(`work folder kept: ${work}`);
}

// --- helpers --------------------------------------------------------------------------
function chooseKind(value) {
  let sum = 0;
  for (const entry of KINDS) {
    sum += entry.share;
    if (value < sum) return entry;
  }
  return KINDS[0];
}

function chooseWeighted(choices) {
  const value = random();
  let sum = 0;
  for (const [choice, weight] of choices) {
    sum += weight;
    if (value < sum) return choice;
  }
  return choices[0][0];
}

/** Samples the state records saved, read without disturbing the runs (undefined before there is a state). */
function savedSoFar() {
  return stateQuery("SELECT count(*) AS n FROM samples WHERE status = 'saved'")?.n;
}

/** Failed samples a later run will try again (transient, tried in fewer than 5 runs: the default --max-attempts). */
function pendingRetries() {
  return stateQuery("SELECT count(*) AS n FROM samples WHERE status = 'failed' AND transient = 1 AND failed_runs < 5")?.n ?? 0;
}

function stateQuery(sql) {
  try {
    const db = new Database(join(output, '.pipeline', 'state.sqlite'), { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 2000');
      return db.prepare(sql).get();
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * What the kills cost: requests per good row, and image bodies the server sent whole (a
 * fault's first answer is not one) beyond the one each good row needs.
 * @param {typeof rows} all @param {Array<{ path: string, status?: number }>} entries
 */
function countFetches(all, entries) {
  const byKey = new Map(all.map((row) => [row.key, row]));
  const seen = new Map();
  let goodRequests = 0;
  let failingRequests = 0;
  let bodies = 0;
  const bodiesPerRow = new Map();
  for (const entry of entries) {
    const row = byKey.get(entry.path.split('/').at(-1) ?? '');
    if (!row) continue;
    const count = (seen.get(entry.path) ?? 0) + 1;
    seen.set(entry.path, count);
    if (!row.good) {
      failingRequests++;
      continue;
    }
    goodRequests++;
    const [, route, param] = entry.path.split('/');
    const firstAnswerFails = route === 'flaky' || route === 'reset' || route === 'cut';
    const whole = entry.status === 200 && !(firstAnswerFails && count <= 1) && !(route === 'redirect' && Number(param) > 0);
    if (whole) {
      bodies++;
      bodiesPerRow.set(row.key, (bodiesPerRow.get(row.key) ?? 0) + 1);
    }
  }
  const goodRows = all.filter((row) => row.good).length;
  return {
    goodRequests,
    failingRequests,
    bodies,
    refetched: bodies - bodiesPerRow.size,
    rowsFetchedMoreThanOnce: [...bodiesPerRow.values()].filter((n) => n > 1).length,
    mostBodiesForOneRow: Math.max(0, ...bodiesPerRow.values()),
    requestsPerGoodRow: goodRows ? goodRequests / goodRows : 0,
  };
}

function median(values) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function markdown(s) {
  const command = `npm run soak -- --minutes ${MINUTES} --rows ${ROWS} --seed ${SEED} --sink ${SINK}${SINK === 'dir' ? ` --subfolders ${SUBFOLDERS}` : ''}`;
  const lines = [
    `Command: \`${command}\` on ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}.`,
    '',
    '| | |',
    '|---|---|',
    `| soak | ${s.minutes.toFixed(1)} min, then ${s.finalRuns} final run(s) |`,
    `| runs started during the soak | ${s.runsDuringSoak} (${s.doubleStarts} times two at the same moment) |`,
    `| two runs writing the output at once | ${s.sharedHolds} |`,
    `| exits (all runs) | 0: ${s.exits[0]}, 75 (output busy): ${s.exits[75]}, killed: ${s.exits.killed}, other: ${s.exits.other} |`,
    `| kills (SIGKILL) | whole group: ${s.kills.group}, parent alone: ${s.kills.parent}, child alone: ${s.kills.child}; ${s.kills.holdingLock} of them while the run held the output |`,
    `| child left after its parent was killed | median ${s.orphanExitMsMedian} ms, longest ${s.orphanExitMsMax} ms |`,
    `| longest run | ${s.longestRunSeconds.toFixed(0)} s |`,
    `| rows | ${s.rows}: ${s.goodRows} good (${KINDS.filter((k) => k.good).map((k) => k.kind).join(', ')}), ${s.failingRows} failing for good (${KINDS.filter((k) => !k.good).map((k) => k.kind).join(', ')}) |`,
    `| good rows stored | ${s.stored} of ${s.goodRows} (${s.savedDuringSoak} of them by the runs during the soak) |`,
    `| lost (good rows not stored) | ${s.lost} |`,
    `| stored twice | ${s.duplicated} |`,
    `| failing rows stored | ${s.failingStored}; recorded failed with their reason: ${s.failingRecorded} of ${s.failingRows} |`,
    `| files not a recorded sample | ${s.strayFiles} |`,
    `| temporary files left | ${s.temporaryFiles} |`,
    ...(SINK === 'dir' ? [`| metadata.parquet rows / images on disk | ${s.metadataRows} / ${s.images} (sizes checked against the files: ${s.sizeMismatches} mismatches) |`] : [`| shards / samples in them | ${s.shards} / ${s.images} |`]),
    `| state agrees with the folder | ${s.stateAgrees ? 'yes' : 'NO'} (status --output too: ${s.statusAgrees ? 'yes' : 'NO'}) |`,
    `| requests for good rows | ${s.fetches.goodRequests} (${s.fetches.requestsPerGoodRow.toFixed(2)} per row; fault answers included) |`,
    `| images sent whole beyond one per good row (refetches) | ${s.fetches.refetched} (${s.fetches.rowsFetchedMoreThanOnce} rows fetched more than once, at most ${s.fetches.mostBodiesForOneRow} times) |`,
    `| problems found | ${s.anomalies} |`,
  ];
  return lines.join('\n');
}

/** A small seeded PRNG (mulberry32): the same seed, the same rows and the same schedule of starts and kills. */
function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
