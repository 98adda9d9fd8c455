// One table of failure reasons: the reference's table (docs/reference.md) says what the code's table says.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { FAILURE_REASONS, isTransient } from '../dist/reasons.js';

test("the documented failure reasons are the code's, with the same retry rule", async () => {
  const reference = await readFile(new URL('../docs/reference.md', import.meta.url), 'utf8');
  const start = reference.indexOf('| reason | retried | meaning |');
  assert.notEqual(start, -1, 'docs/reference.md has the failure reasons table');
  const table = reference.slice(start);
  const rows = table.slice(0, table.indexOf('\n\n')).split('\n').slice(2);
  /** @type {Map<string, boolean>} */
  const documented = new Map();
  for (const row of rows) {
    const [, names = '', retried = ''] = row.split('|').map((cell) => cell.trim());
    for (const [, name = ''] of names.matchAll(/`([a-z_<>]+)`/g)) documented.set(name, retried !== '');
  }
  const named = Object.keys(FAILURE_REASONS);
  assert.deepEqual([...documented.keys()].filter((name) => name !== 'http_<status>').sort(), [...named].sort());
  for (const name of named) assert.equal(documented.get(name), isTransient(/** @type {any} */ (name)), `${name}: retried column`);
  assert.deepEqual(
    [408, 429, 500, 503, 404, 403, 410].map((status) => isTransient(`http_${status}`)),
    [true, true, true, true, false, false, false],
  );
});
