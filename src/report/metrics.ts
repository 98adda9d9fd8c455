/**
 * `--metrics-file`: the run's counters in Prometheus text format, for node_exporter's
 * textfile collector. Rewritten atomically (temporary file and rename) every few seconds
 * and at the end, so the collector never reads half a file.
 */
import { writeFileAtomically } from '../util/atomic-file.js';
import type { HostStatus } from '../fetch/host-gate.js';
import type { Snapshot } from './counters.js';
import { rates } from './progress.js';

export function formatMetrics(snapshot: Snapshot, startedAt: number): string {
  const { imagesPerSecond, megabytesPerSecond } = rates(snapshot);
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[labels: string, value: number]>) => {
    lines.push(`# HELP photo_pipeline_${name} ${help}`, `# TYPE photo_pipeline_${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`photo_pipeline_${name}${labels} ${value}`);
  };
  const byLabel = (label: string, counts: Record<string, number>) =>
    Object.entries(counts).map(([key, value]): [string, number] => [`{${label}="${key}"}`, value]);
  metric('rows_total', 'counter', 'Rows with an outcome.', [['', snapshot.rows]]);
  metric('saved_total', 'counter', 'Samples saved.', [['', snapshot.saved]]);
  metric('failed_total', 'counter', 'Rows failed, by reason.', byLabel('reason', snapshot.failures));
  metric('skipped_total', 'counter', 'Rows skipped on resume, by reason.', byLabel('reason', snapshot.skips));
  metric('bytes_fetched_total', 'counter', 'Bytes downloaded.', [['', snapshot.bytesFetched]]);
  metric('bytes_written_total', 'counter', 'Bytes written by the sink.', [['', snapshot.bytesWritten]]);
  metric('in_flight', 'gauge', 'Rows read but without an outcome yet.', [['', snapshot.read - snapshot.rows]]);
  metric('images_per_second', 'gauge', 'Samples saved per second over the run.', [['', round(imagesPerSecond)]]);
  metric('megabytes_per_second', 'gauge', 'Megabytes downloaded per second over the run.', [['', round(megabytesPerSecond)]]);
  if (snapshot.total !== undefined) metric('rows_in_input', 'gauge', 'Rows in the input.', [['', snapshot.total]]);
  // Per host, for the busiest few only: a dataset of many hosts must not become thousands of series.
  const hosts = snapshot.hosts().slice(0, HOSTS_IN_METRICS);
  const perHost = (value: (host: HostStatus) => number | undefined) =>
    hosts.flatMap((host): Array<[string, number]> => {
      const v = value(host);
      return v === undefined ? [] : [[`{host=${JSON.stringify(host.host)}}`, round(v)]];
    });
  if (hosts.length > 0) {
    metric('host_in_flight', 'gauge', 'Requests in flight to the host.', perHost((host) => host.inFlight));
    metric('host_in_flight_limit', 'gauge', 'The host\'s current in-flight limit (halved on 429/503, recovers slowly).', perHost((host) => host.limit));
    metric('host_pace_requests_per_second', 'gauge', 'The host\'s current pace, after a 429/503 without Retry-After (absent while unpaced).', perHost((host) => host.pace));
    metric('host_slow_downs_total', 'counter', '429 and 503 answers from the host.', perHost((host) => host.slowDowns));
  }
  metric('start_time_seconds', 'gauge', 'When the run started (Unix time).', [['', Math.floor(startedAt / 1000)]]);
  metric('last_update_time_seconds', 'gauge', 'When this file was written (Unix time).', [['', Math.floor(Date.now() / 1000)]]);
  return `${lines.join('\n')}\n`;
}

export async function writeMetrics(path: string, text: string): Promise<void> {
  await writeFileAtomically(path, text);
}

const HOSTS_IN_METRICS = 20;

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
