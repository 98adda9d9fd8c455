/**
 * How the run shows its progress: a live bar on a terminal (cli-progress), one plain line
 * every `--log-every` seconds otherwise (cron logs), nothing with `--quiet`.
 */
import cliProgress from 'cli-progress';
import type { HostStatus } from '../fetch/host-gate.js';
import type { Snapshot } from './counters.js';

export interface ProgressReporter {
  /**
   * Shows the run's progress from now on, reading it when it draws (a few times a second
   * at most): not at every row, where the main thread's time per image is counted.
   */
  start(read: () => Snapshot): void;
  /** Prints a line without breaking the bar. */
  log(message: string): void;
  stop(): void;
}

export function rates(snapshot: Snapshot): { imagesPerSecond: number; megabytesPerSecond: number; etaSeconds: number | undefined } {
  const seconds = Math.max(snapshot.seconds, 1e-3);
  const rowsPerSecond = snapshot.rows / seconds;
  const left = snapshot.total === undefined ? undefined : snapshot.total - snapshot.rows;
  return {
    imagesPerSecond: snapshot.saved / seconds,
    megabytesPerSecond: snapshot.bytesFetched / 1e6 / seconds,
    etaSeconds: left === undefined || rowsPerSecond === 0 ? undefined : left / rowsPerSecond,
  };
}

export function progressLine(snapshot: Snapshot): string {
  const { imagesPerSecond, megabytesPerSecond, etaSeconds } = rates(snapshot);
  const of = snapshot.total === undefined ? '' : ` of ${snapshot.total}`;
  const eta = etaSeconds === undefined ? '' : `, ETA ${formatDuration(etaSeconds)}`;
  return (
    `${snapshot.rows}${of} rows, ${snapshot.saved} saved, ${snapshot.failed} failed, ${snapshot.skipped} skipped, ` +
    `${imagesPerSecond.toFixed(2)} images/s, ${megabytesPerSecond.toFixed(1)} MB/s in${eta}${hostsPart(snapshot.hosts())}`
  );
}

/** Hosts shown on a progress line: the busiest few, and any that said slow down. */
const HOSTS_SHOWN = 3;

/** ` | images.pexels.com: 4 of 8 in flight, 3.4 req/s, 17 told to slow down`, for the busiest hosts. */
function hostsPart(hosts: readonly HostStatus[]): string {
  const shown = hosts.filter((host) => host.inFlight > 0 || host.slowDowns > 0).slice(0, HOSTS_SHOWN);
  return shown
    .map(({ host, inFlight, limit, pace, slowDowns }) => {
      const paced = pace === undefined ? 'unpaced' : `${pace.toFixed(pace < 10 ? 2 : 1)} req/s`;
      return ` | ${host}: ${inFlight} of ${limit} in flight, ${paced}, ${slowDowns} told to slow down`;
    })
    .join('');
}

/** Plain lines on stderr every `everyMs` (cron, pipes). */
export function logProgress(write: (line: string) => void, everyMs: number): ProgressReporter {
  let timer: NodeJS.Timeout | undefined;
  return {
    start(read) {
      if (everyMs > 0) timer = setInterval(() => write(`progress: ${progressLine(read())}`), everyMs).unref();
    },
    log: write,
    stop: () => clearInterval(timer),
  };
}

/** How often the bar is drawn. */
const BAR_EVERY_MS = 200;

/** A live bar on a terminal. */
export function barProgress(stream: NodeJS.WriteStream): ProgressReporter {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: (_options, params, payload: { line?: string }) => {
        const total = params.total > 0 ? `${Math.round(params.progress * 100)}% ` : '';
        return `${total}${payload.line ?? ''}`;
      },
      fps: 5,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 100,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  return {
    start(read) {
      const draw = () => {
        const snapshot = read();
        if (!started) {
          bar.start(snapshot.total ?? 0, 0, { line: '' });
          started = true;
        }
        bar.update(snapshot.rows, { line: progressLine(snapshot) });
      };
      timer = setInterval(draw, BAR_EVERY_MS).unref();
    },
    log(message) {
      if (started) stream.write('\r\x1b[2K');
      stream.write(`${message}\n`);
    },
    stop() {
      clearInterval(timer);
      if (started) bar.stop();
    },
  };
}

export const silentProgress: ProgressReporter = { start() {}, log() {}, stop() {} };

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}
