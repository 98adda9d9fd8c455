/**
 * Finds the sink a run asked for: a built-in name, a module path (`./my-sink.mjs`) or a
 * package name. A module's default export (or its `createSink` export) is the factory.
 */
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SinkError, UsageError, errorMessage, isUnusableOutput } from '../errors.js';
import type { Sink, SinkContext, SinkFactory } from './contract.js';
import { createDirSink } from './dir.js';
import { createNullSink } from './null.js';
import { createParquetSink } from './parquet.js';
import { createWebDatasetSink } from './webdataset.js';

export const BUILT_IN_SINKS: Readonly<Record<string, SinkFactory>> = {
  dir: createDirSink,
  webdataset: createWebDatasetSink,
  parquet: createParquetSink,
  null: createNullSink,
};

export async function openSink(spec: string | SinkFactory, context: SinkContext): Promise<Sink> {
  // hasOwn: `--sink toString` must not find Object.prototype.toString.
  const factory = typeof spec === 'function' ? spec : Object.hasOwn(BUILT_IN_SINKS, spec) ? BUILT_IN_SINKS[spec]! : await loadSinkModule(spec);
  const name = typeof spec === 'function' ? spec.name || 'sink factory' : spec;
  let sink: Sink;
  try {
    sink = await factory(context);
  } catch (error) {
    // A full or read-only disk is the output's state, not a usage mistake.
    if (isUnusableOutput(error)) throw new SinkError(errorMessage(error), { cause: error });
    throw new UsageError(`sink ${name} failed to open: ${errorMessage(error)}`);
  }
  if (typeof sink?.write !== 'function' || typeof sink.close !== 'function') {
    throw new UsageError(`sink ${name} must return an object with write(sample) and close() methods`);
  }
  return sink;
}

async function loadSinkModule(spec: string): Promise<SinkFactory> {
  let module: { default?: unknown; createSink?: unknown };
  try {
    module = (await import(resolveModule(spec))) as typeof module;
  } catch (error) {
    throw new UsageError(`cannot load sink module ${spec}: ${errorMessage(error)}`);
  }
  const factory = typeof module.default === 'function' ? module.default : module.createSink;
  if (typeof factory !== 'function') {
    throw new UsageError(`sink module ${spec} must export a factory function (default export or createSink)`);
  }
  return factory as SinkFactory;
}

/** Paths are relative to the working directory; bare names are packages found from there. */
function resolveModule(spec: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) return pathToFileURL(resolve(spec)).href;
  try {
    return pathToFileURL(createRequire(join(process.cwd(), 'package.json')).resolve(spec)).href;
  } catch {
    return spec; // let import() try, for ESM-only packages that require.resolve cannot see
  }
}
