#!/usr/bin/env node
// `npm run docs:cli`: writes docs/cli.md and the README's table of common flags from the
// flag table (src/cli/flags.ts, built into dist/).
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { cliReference, withCommonFlags } from '../dist/cli/docs.js';

const root = new URL('..', import.meta.url);
await mkdir(new URL('docs/', root), { recursive: true });
await writeFile(new URL('docs/cli.md', root), cliReference());
const readme = new URL('README.md', root);
await writeFile(readme, withCommonFlags(await readFile(readme, 'utf8')));
console.log('wrote docs/cli.md and the README table of common flags');
