/** The library: run the pipeline from code, and the types a custom sink implements. */
export { runPipeline, type RunHooks } from './pipeline.js';
export { formatSummary, type Summary, type ResultLine } from './stages/record.js';
export { resolveOptions, type Options, type PipelineOptions } from './options.js';
export { DEFAULT_COLUMNS, type ColumnNames, type InputFormat } from './sources/options.js';
export { DEFAULT_USER_AGENT } from './fetch/options.js';
export type { Sample, Sink, SinkContext, SinkFactory, SinkWriteResult } from './sinks/contract.js';
export { SampleRefused } from './sinks/contract.js';
export type { ImageFormat, FailureReason } from './types.js';
export { UsageError, SinkError } from './errors.js';
export { shortestSideSize } from './image/size-rule.js';
