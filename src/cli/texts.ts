/** Each command's name, usage and description: for its `--help` and for docs/cli.md. */
import { VERSION } from '../version.js';
import type { CommandName } from './flags.js';

export interface CommandText {
  /** e.g. `photo-concept-pipeline worker` */
  readonly name: string;
  readonly description: string;
  readonly usage?: string;
  /** `--version` prints it (the run command's). */
  readonly version?: string;
}

export const COMMAND_TEXT: Readonly<Record<CommandName, CommandText>> = {
  run: {
    name: 'photo-concept-pipeline',
    description:
      'Fetch the images of a list of URLs with captions, resize them and write a training-ready dataset.\n' +
      'Rows come from --input (NDJSON, CSV or Parquet) or as NDJSON on standard input.\n' +
      'Other commands: status, report, enqueue, worker, finalize (each takes --help).',
    usage: '--output DIR [--input FILE] [options]',
    version: VERSION,
  },
  status: {
    name: 'photo-concept-pipeline status',
    description: 'Print what the resume state of an output folder holds, or (with --redis) the state of a queue and its workers.',
  },
  enqueue: {
    name: 'photo-concept-pipeline enqueue',
    description: 'Split an input into jobs of rows and add them to a queue for `worker`s. Adding the same input again adds nothing.',
  },
  worker: {
    name: 'photo-concept-pipeline worker',
    usage: '--redis URL --queue NAME --output DIR [options]',
    description: 'Take jobs from a queue and run the pipeline over their rows, into an output folder other workers may share.\nTakes every run flag except the input ones (rows come from the jobs).',
  },
  report: {
    name: 'photo-concept-pipeline report',
    description: 'Write one self-contained HTML page that shows a fetched dataset: totals, failures, hosts, sizes, SimpleTuner buckets, captions, a contact sheet. Reads the state read-only: it works while a run goes on.',
  },
  finalize: {
    name: 'photo-concept-pipeline finalize',
    description: "When the queue has drained: write the shared output's dataset-wide files (dir: metadata.parquet and the SimpleTuner config) and remove what killed workers left.",
  },
};
