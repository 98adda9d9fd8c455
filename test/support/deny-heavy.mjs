// Preloaded with `node --import` to make sharp, undici and parquet-wasm impossible to load,
// as on a machine where sharp's native module is missing: what still works must not need them.
import { register } from 'node:module';

const hook = `export async function resolve(specifier, context, next) {
  if (/^(sharp|undici|parquet-wasm)($|\\/)/.test(specifier)) throw new Error('Could not load the "' + specifier + '" module (denied by the test)');
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
