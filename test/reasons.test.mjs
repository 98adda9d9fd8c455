// One table of failure reasons and one of skip reasons: the reference's tables (docs/reference.md) say what the code's tables say.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { FAILURE_REASONS, SKIP_REASONS, isTransient } from '../dist/reasons.js';

/** The rows of the markdown table that starts with `header`, as cells. @param {string} reference @param {string} header */
function tableRows(reference, header) {
  const start = reference.indexOf(header);
  assert.notEqual(start, -1, `docs/reference.md has the table "${header}"`);
  const table = reference.slice(start);
  return table.slice(0, table.indexOf('\n\n')).split('\n').slice(2).map((row) => row.split('|').map((cell) => cell.trim()));
}

test("the documented failure reasons are the code's, with the same retry rule", async () => {
  const reference = await readFile(new URL('../docs/reference.md', import.meta.url), 'utf8');
  /** @type {Map<string, boolean>} */
  const documented = new Map();
  for (const [, names = '', retried = ''] of tableRows(reference, '| reason | retried | meaning |')) {
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

test("the documented skip reasons are the code's", async () => {
  const reference = await readFile(new URL('../docs/reference.md', import.meta.url), 'utf8');
  const documented = tableRows(reference, '| skip reason | meaning |').flatMap(([, names = '']) => [...names.matchAll(/`([a-z_]+)`/g)].map(([, name = '']) => name));
  assert.deepEqual(documented.sort(), Object.keys(SKIP_REASONS).sort());
});
