/** The command line: the first word picks the command (a run when it is none of them). */
import { runCommand } from './run.js';

/** Commands besides a run; each loads only what it needs. */
const COMMANDS: Readonly<Record<string, (argv: readonly string[]) => Promise<number>>> = {
  status: async (argv) => (await import('./status.js')).statusCommand(argv),
  report: async (argv) => (await import('./report.js')).reportCommand(argv),
  enqueue: async (argv) => (await import('./queue.js')).enqueueCommand(argv),
  worker: async (argv) => (await import('./queue.js')).workerCommand(argv),
  finalize: async (argv) => (await import('./queue.js')).finalizeCommand(argv),
};

export async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0] !== undefined && Object.hasOwn(COMMANDS, argv[0]) ? COMMANDS[argv[0]] : undefined;
  return command ? command(argv.slice(1)) : runCommand(argv);
}

/** The words that name a command (the rest of the command line is a run). */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS);
