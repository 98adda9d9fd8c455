/** The library: run the pipeline from code, and the types a custom sink implements. */
export { runPipeline, type RunHooks } from './pipeline.js';
export { formatSummary, type Summary, type ResultLine } from './stages/record.js';
export {
  resolveOptions,
  DEFAULT_COLUMNS,
  DEFAULT_USER_AGENT,
  type Options,
  type PipelineOptions,
  type ColumnNames,
  type InputFormat,
} from './options.js';
export type { Sample, Sink, SinkContext, SinkFactory, SinkWriteResult } from './sinks/contract.js';
export { SampleRefused } from './sinks/contract.js';
export type { ImageFormat, FailureReason } from './types.js';
export { UsageError, SinkError } from './errors.js';
export { shortestSideSize } from './image/size-rule.js';
