// How the bot stops on a signal: one shutdown, whatever repeats of the signal come, then its last
// log line written, then the exit.
import { isShardProcess } from './discord/shards.ts';
import { flushLogs, type Logger } from './log.ts';

/** Where the signals come from and how the process ends (the process itself, but in a test). */
export interface StopTarget {
  on(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  once(event: 'disconnect', listener: () => void): unknown;
  exit(code: number): void;
  env: NodeJS.ProcessEnv;
}

/**
 * The longest a shutdown may take. Each of its steps has a deadline of its own, but a database
 * that stops answering mid-statement held the process for good: a service manager's SIGTERM must
 * end it. Past this the process exits (status 1); jobs left half-settled are put right by the
 * next start's recovery, as after a crash.
 */
export const STOP_DEADLINE_MS = 30_000;

/**
 * A stop signal may come twice (a second Ctrl-C, a manager that signals the group and then the
 * process, tsx's CLI relaying its own). A repeat must not cut the shutdown short (Node's default
 * action once a `once` handler is spent): jobs would be left half-settled and PGlite unclosed.
 */
export function onStopSignal(
  log: Logger,
  shutdown: (signal: NodeJS.Signals) => Promise<void>,
  target: StopTarget = process,
  deadlineMs = STOP_DEADLINE_MS,
): void {
  let state: 'running' | 'stopping' | 'stopped' = 'running';
  const stop = async (signal: NodeJS.Signals) => {
    if (state !== 'running') {
      // once the shutdown has ended, the process only waits for its log to be written: a repeat
      // then has nothing to report, and its line would come after the last one ("stopped")
      if (state === 'stopping') log.info({ signal }, 'already shutting down');
      return;
    }
    state = 'stopping';
    log.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      if (state !== 'stopping') return;
      state = 'stopped';
      log.error({ signal, deadlineMs }, 'did not stop in time (a server that does not answer?); exiting');
      void flushLogs(log).then(() => target.exit(1));
    }, deadlineMs);
    let failure: unknown;
    try {
      await shutdown(signal);
    } catch (err) {
      failure = err ?? new Error('shutdown failed');
    }
    clearTimeout(deadline);
    // the deadline has ended the process already
    if (state !== 'stopping') return;
    // ended before its last line is written: a repeat from here on writes nothing after it
    state = 'stopped';
    if (failure === undefined) log.info('stopped');
    else log.error({ err: failure }, 'shutdown failed');
    await flushLogs(log);
    target.exit(failure === undefined ? 0 : 1);
  };
  target.on('SIGINT', () => void stop('SIGINT'));
  target.on('SIGTERM', () => void stop('SIGTERM'));
  // a shard whose manager died (SIGKILL, out of memory) is orphaned: nothing would stop it or start
  // it again, and a second manager's shard would answer the same guilds. Its IPC channel closing says so
  if (isShardProcess(target.env)) target.once('disconnect', () => void stop('SIGTERM'));
}
