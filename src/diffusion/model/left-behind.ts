/**
 * Temporary folders are named with the pid of the process writing them (`….importing-<pid>-…`,
 * `….tmp-<pid>-…`), so a later process can tell which a killed one left behind. A pid alone is not
 * enough: under Docker the bot is always PID 1, so a folder left by the previous container run
 * carries our own pid. One with our pid is ours only if it was touched after this process started
 * (its worker threads share the pid and the start time, so none removes another's).
 */
import { statSync } from 'node:fs';

/** Slack for coarse file-system clocks: a folder of ours is never judged older than our start. */
const CLOCK_SLACK_MS = 2000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `dir`, named with `pid`, was left behind by a process that is gone. */
export function leftBehind(dir: string, pid: number): boolean {
  if (pid !== process.pid) return !processAlive(pid);
  const started = Date.now() - process.uptime() * 1000;
  const touched = statSync(dir, { throwIfNoEntry: false })?.mtimeMs;
  return touched !== undefined && touched < started - CLOCK_SLACK_MS;
}
