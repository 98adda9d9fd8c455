/**
 * docs/cli.md and the README's table of common flags, generated from the flag table, so
 * neither can drift from what the commands take. `npm run docs:cli` writes them; a test
 * fails when the files differ from what this generates.
 */
import { shownDefault } from './command.js';
import { FLAGS, SECTIONS, longFlag, type CommandName, type FlagName, type FlagSpec } from './flags.js';
import { COMMAND_TEXT } from './texts.js';
import type { ValueKind } from './values.js';

const COMMAND_ORDER: readonly CommandName[] = ['run', 'status', 'report', 'enqueue', 'worker', 'finalize'];

/** The whole of docs/cli.md. */
export function cliReference(): string {
  const lines = [
    '# Command-line reference',
    '',
    '<!-- Generated from src/cli/flags.ts by `npm run docs:cli`: edit the flag table, not this file. -->',
    '',
    '| command | what |',
    '| --- | --- |',
    ...COMMAND_ORDER.map((command) => `| \`${COMMAND_TEXT[command].name}\` | ${cell(COMMAND_TEXT[command].description.split('\n')[0]!)} |`),
    '',
    'A run is the command with no command word. Durations are in seconds (fractions allowed), sizes take a unit (`1048576`, `64MiB`, `10MB`),',
    'lists are comma-separated. Every command takes `--help`; the run takes `--version`.',
  ];
  for (const section of SECTIONS) {
    const names = (Object.keys(FLAGS) as FlagName[]).filter((name) => spec(name).section === section);
    if (names.length === 0) continue;
    lines.push('', `## ${section}`, '', '| flag | default | commands | what |', '| --- | --- | --- | --- |');
    for (const name of names) {
      const { commands, help, helpFor, required } = spec(name);
      const forOthers = Object.entries(helpFor ?? {}).map(([command, text]) => ` ${command}: ${text}.`).join('');
      const needed = required?.length ? ` Required by ${required.join(', ')}.` : '';
      lines.push(`| \`${cell(usage(name))}\` | ${cell(shownDefault(name))} | ${commands.join(', ')} | ${cell(`${help}.${forOthers}${needed}`)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The README's table of the flags most people need (those marked `common`). */
export function commonFlagsTable(): string {
  const names = (Object.keys(FLAGS) as FlagName[]).filter((name) => spec(name).common === true);
  return [
    '| flag | default | what |',
    '| --- | --- | --- |',
    ...names.map((name) => `| \`${cell(usage(name))}\` | ${spec(name).required?.includes('run') ? 'required' : cell(shownDefault(name))} | ${cell(spec(name).help)} |`),
  ].join('\n');
}

export const COMMON_FLAGS_START = '<!-- common flags: generated from src/cli/flags.ts by `npm run docs:cli` -->';
export const COMMON_FLAGS_END = '<!-- end of common flags -->';

/** `text` (the README) with the table between its markers brought up to date; unchanged text when it has no markers. */
export function withCommonFlags(text: string): string {
  const start = text.indexOf(COMMON_FLAGS_START);
  const end = text.indexOf(COMMON_FLAGS_END);
  if (start < 0 || end < start) return text;
  return `${text.slice(0, start + COMMON_FLAGS_START.length)}\n${commonFlagsTable()}\n${text.slice(end)}`;
}

type Spec = FlagSpec<unknown> & { readonly kind?: ValueKind<unknown> & { readonly choices?: readonly string[] } };
const spec = (name: FlagName): Spec => FLAGS[name] as Spec;

function usage(name: FlagName): string {
  const { short, kind } = spec(name);
  const value = kind ? ` ${kind.choices ? kind.choices.join('|') : kind.placeholder.toUpperCase()}` : '';
  return `${short ? `-${short}, ` : ''}${longFlag(name)}${value}`;
}

/** Text for a Markdown table cell: pipes escaped, nothing that breaks the row. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}
