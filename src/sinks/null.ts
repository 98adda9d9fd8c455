/** The `null` sink: accepts every sample and stores nothing. For benchmarks and dry runs. */
import type { SinkFactory } from './contract.js';

export const createNullSink: SinkFactory = () => ({
  concurrency: 64,
  async write() {
    return { bytesWritten: 0 };
  },
  async close() {},
});
