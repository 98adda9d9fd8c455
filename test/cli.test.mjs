// The command line's shape: one flag table behind every command, the docs generated from
// it, and a source tree without import cycles.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { glob } from 'tinyglobby';
import { parseCircular, parseDependencyTree } from 'dpdm';
import { buildCommand } from '../dist/cli/command.js';
import { COMMON_FLAGS_END, COMMON_FLAGS_START, cliReference, commonFlagsTable } from '../dist/cli/docs.js';
import { FLAGS } from '../dist/cli/flags.js';
import { pipelineOptionsFrom } from '../dist/cli/run.js';
import { VERSION } from '../dist/version.js';

const root = new URL('..', import.meta.url);
const read = (path) => readFile(new URL(path, root), 'utf8');

describe('the flag table', () => {
  test('every option of every command comes from the table, under the name the table gives it', () => {
    for (const command of /** @type {const} */ (['run', 'status', 'report', 'enqueue', 'worker', 'finalize'])) {
      for (const option of buildCommand(command).options) {
        if (option.long === '--version' || option.long === '--help') continue;
        assert.ok(Object.hasOwn(FLAGS, option.attributeName()), `${command} ${option.long} is not in the flag table`);
      }
    }
  });

  test('flags land where the table says, and only when given', () => {
    const options = /** @type {any} */ (pipelineOptionsFrom(['--output', 'out', '--input', 'a.parquet', '--timeout', '2.5', '--max-bytes', '1MiB', '--no-upscale', '--cdn-resize', '--dedupe', 'content,url', '--missing-captions', 'keep', '--keep-columns', 'all']));
    assert.equal(options.output, 'out');
    assert.deepEqual(options.input.paths, ['a.parquet']);
    assert.equal(options.fetch.timeoutMs, 2500);
    assert.equal(options.fetch.maxBytes, 1024 * 1024);
    assert.equal(options.image.upscale, false);
    assert.deepEqual(options.fetch.cdnResizeHosts, ['images.pexels.com']);
    assert.deepEqual(options.resume.dedupe, ['url', 'content'], 'each key once, in the table order');
    assert.equal(options.input.missingCaptions, 'keep');
    assert.equal(options.input.keep, 'all');
    assert.equal(options.fetch.concurrency, undefined, 'a flag not given leaves the option to its default');
  });

  test('docs/cli.md is what the table generates (npm run docs:cli writes it)', async () => {
    assert.equal(await read('docs/cli.md'), cliReference());
  });

  test("the README's table of common flags is what the table generates", async () => {
    const readme = await read('README.md');
    const start = readme.indexOf(COMMON_FLAGS_START);
    const end = readme.indexOf(COMMON_FLAGS_END);
    assert.ok(start >= 0 && end > start, 'the README has the markers of the common flags table');
    assert.equal(readme.slice(start + COMMON_FLAGS_START.length, end).trim(), commonFlagsTable());
  });

  test('the version is the package version', async () => {
    assert.equal(VERSION, JSON.parse(await read('package.json')).version);
  });
});

describe('the source tree', () => {
  test('has no import cycle, type-only imports included', async () => {
    const entries = await glob('src/**/*.ts', { cwd: root.pathname });
    const tree = await parseDependencyTree(entries, { context: root.pathname, cwd: root.pathname, tsconfig: 'tsconfig.json', transform: false, skipDynamicImports: false });
    assert.deepEqual(parseCircular(tree, false), []);
  });

  test('the queue imports nothing from the command line; nothing below options.ts imports it', async () => {
    const offenders = [];
    for (const file of await glob('src/**/*.ts', { cwd: root.pathname })) {
      const text = await read(file);
      const imports = [...text.matchAll(/from '([^']+)'|import\('([^']+)'\)/g)].map((match) => match[1] ?? match[2]);
      const top = ['src/cli/', 'src/queue/', 'src/run.ts', 'src/pipeline.ts', 'src/index.ts', 'src/options.ts', 'src/demo/'];
      if (file.startsWith('src/queue/') && imports.some((path) => path.includes('/cli/'))) offenders.push(`${file} imports the CLI`);
      if (!top.some((prefix) => file.startsWith(prefix)) && imports.some((path) => /(^|\/)options\.js$/.test(path) && path.startsWith('../options'))) offenders.push(`${file} imports options.ts`);
    }
    assert.deepEqual(offenders, []);
  });
});
