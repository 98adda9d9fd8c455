/**
 * A command's commander definition and the parse of its argv, both read off the flag table
 * (cli/flags.ts): every flag the command takes, with its help and shown default; the
 * values given, typed; and where they land in the options.
 */
import { Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import { resolveOptions, type PipelineOptions } from '../options.js';
import { FLAGS, flagsOf, longFlag, type CommandName, type FlagName, type FlagSpec, type Flags } from './flags.js';
import { COMMAND_TEXT } from './texts.js';
import type { ValueKind } from './values.js';


/** What a command line said: the flags as given (typed), and the options they set. */
export interface Parsed {
  readonly flags: Flags;
  /** The options the flags set, over `base`; each subsystem fills the rest with its defaults. */
  readonly options: Draft;
}

/** Options under construction: nested records, filled path by path. */
export type Draft = Record<string, unknown>;

type AnySpec = FlagSpec<unknown> & { readonly kind?: ValueKind<unknown> & { readonly choices?: readonly string[]; readonly variadic?: boolean } };
const spec = (name: FlagName): AnySpec => FLAGS[name] as AnySpec;

/** The commander command for `name`, with every flag the table gives it. */
export function buildCommand(command: CommandName): Command {
  const text = COMMAND_TEXT[command];
  const program = new Command(text.name).description(text.description).exitOverride().configureOutput({ writeErr: (line) => process.stderr.write(line) });
  if (text.usage) program.usage(text.usage);
  if (text.version) program.version(text.version);
  for (const name of flagsOf(command)) program.addOption(optionFor(name, command));
  // A worker's rows come from its jobs: it names the run flags it does not take, hidden, to refuse them by name.
  if (command === 'worker') for (const name of flagsOf('run')) if (!spec(name).commands.includes('worker')) program.addOption(optionFor(name, command).hideHelp());
  return program;
}

function optionFor(name: FlagName, command: CommandName): Option {
  const { short, kind, help, helpFor, required } = spec(name);
  const value = kind ? ` <${kind.placeholder}>` : '';
  const shown = shownDefault(name);
  const option = new Option(`${short ? `-${short}, ` : ''}${longFlag(name)}${value}`, `${helpFor?.[command] ?? help}${shown ? ` (default: ${shown})` : ''}`);
  if (kind?.choices) option.choices(kind.choices);
  else if (kind?.variadic) option.argParser((text: string, previous: unknown[] | undefined) => [...(previous ?? []), ...(kind.parse(text) as unknown[])]);
  else if (kind) option.argParser((text: string) => kind.parse(text));
  if (required?.includes(command)) option.makeOptionMandatory();
  return option;
}

let defaults: PipelineOptions | undefined;

/** The default a flag's help and docs/cli.md show: its own text, or the options' default where it lands. */
export function shownDefault(name: FlagName): string {
  const { defaultText, to, kind, fallback } = spec(name);
  if (defaultText !== undefined) return defaultText;
  if (!kind) return '';
  if (fallback !== undefined) return kind.show(fallback);
  if (to === undefined) return '';
  defaults ??= resolveOptions({ output: '.' });
  const value = to.split('.').reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], defaults);
  return value === undefined ? '' : kind.show(value);
}

/**
 * Parses a command's argv: the typed flags, and the options they set over `base` (only
 * flags the user gave land, so each subsystem's own defaults fill the rest). Throws
 * CommanderError (already printed) or UsageError. `base` is filled in and returned as `options`.
 */
export function parseCommand(command: CommandName, argv: readonly string[], base: Draft = {}): Parsed {
  const program = buildCommand(command);
  program.parse([...argv], { from: 'user' });
  if (program.args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(program.args[0])}`);
  const given = (name: FlagName) => program.getOptionValueSource(name) === 'cli';
  const values = program.opts<Record<string, unknown>>();
  const flags: Record<string, unknown> = {};
  const options = base;
  for (const name of Object.keys(FLAGS) as FlagName[]) {
    if (!given(name)) continue;
    const { commands, to, as, refusal } = spec(name);
    if (!commands.includes(command)) throw new UsageError(refusal ?? `a worker reads its rows from the queue's jobs: ${longFlag(name)} belongs to enqueue`);
    flags[name] = values[name];
    if (to !== undefined) land(options, to, as ? as(values[name]) : values[name]);
  }
  return { flags: flags as Flags, options };
}

function land(draft: Draft, path: string, value: unknown): void {
  const keys = path.split('.');
  let at = draft;
  for (const key of keys.slice(0, -1)) at = (at[key] ??= {}) as Draft;
  at[keys.at(-1)!] = value;
}
