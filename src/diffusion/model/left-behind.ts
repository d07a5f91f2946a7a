/**
 * Temporary folders are named with the pid of the process writing them (`….importing-<pid>-…`,
 * `….tmp-<pid>-…`), so a later process can tell which a killed one left behind. A pid alone is not
 * enough: containers sharing a volume each run the bot as PID 1 in their own pid namespace, so a
 * folder with our pid, or with a pid that is gone here, may be another container's live import.
 * So a folder is left behind only when nothing anywhere in it has changed for a while (a writer
 * touches its files every few seconds), and besides its pid is gone here, or is ours and nothing in
 * it changed since this process started (its worker threads share the pid and the start time).
 */
import { lstatSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * How long nothing in a temporary folder may have changed before it counts as abandoned. An import
 * or a graph save that is running writes its files every few seconds (hashing, before the folder
 * exists, is the longest pause); a stopped or killed one writes nothing. Ten minutes is far above
 * any pause of a running writer, and a leftover costs only disk space until then.
 */
export const ABANDONED_AFTER_MS = 10 * 60_000;

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

/**
 * The newest mtime of `dir` and everything in it (a handful of files), or undefined when `dir` is
 * gone. Anything that vanishes or cannot be read while we look means a writer is busy: now.
 */
function lastChange(dir: string): number | undefined {
  const top = statSync(dir, { throwIfNoEntry: false });
  if (!top) return undefined;
  try {
    return newestInside(dir, top.mtimeMs);
  } catch {
    return Date.now();
  }
}

function newestInside(dir: string, newest: number): number {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, lstatSync(file).mtimeMs);
    if (entry.isDirectory()) newest = newestInside(file, newest);
  }
  return newest;
}

/** Whether `dir`, named with `pid`, was left behind by a process that is gone. */
export function leftBehind(dir: string, pid: number): boolean {
  const changed = lastChange(dir);
  if (changed === undefined || Date.now() - changed < ABANDONED_AFTER_MS) return false;
  if (pid !== process.pid) return !processAlive(pid);
  const started = Date.now() - process.uptime() * 1000;
  return changed < started - CLOCK_SLACK_MS;
}
