/**
 * The first SIGINT or SIGTERM stops gracefully (aborts `signal`, after `onFirst`); a second
 * one leaves at once (files are still whole: every file is renamed into place complete,
 * temporary ones are swept at the next start).
 */
import { EXIT_OK, EXIT_ON_SIGNAL } from './exit.js';

export interface SignalStop {
  readonly signal: AbortSignal;
  /** The exit code for a command that ended normally: 130 or 143 after a signal. */
  exitCode(): number;
  received(): 'SIGINT' | 'SIGTERM' | undefined;
  dispose(): void;
}

export function stopOnSignals(onFirst: (name: 'SIGINT' | 'SIGTERM') => void = () => {}): SignalStop {
  const stop = new AbortController();
  let received: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (name: 'SIGINT' | 'SIGTERM') => {
    if (received) process.exit(EXIT_ON_SIGNAL[name]);
    received = name;
    onFirst(name);
    stop.abort();
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    exitCode: () => (received ? EXIT_ON_SIGNAL[received] : EXIT_OK),
    received: () => received,
    dispose: () => void process.off('SIGINT', onSignal).off('SIGTERM', onSignal),
  };
}
