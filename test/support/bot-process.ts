// The bot as `npm start` runs it (`node --import tsx src/main.ts`), as a child process in a folder
// of its own, configured only by its environment, whose JSON log lines the test reads as they come.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..', '..');

/** What `npm start` runs; the child runs the same, with paths that work from another folder. */
export const START_SCRIPT = 'node --import tsx src/main.ts';
export const startScript = (): string =>
  (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } })
    .scripts.start;
const startArgs = [
  '--import',
  pathToFileURL(path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href,
  path.join(root, 'src', 'main.ts'),
];

export interface BotProcess {
  child: ChildProcess;
  /** Parsed JSON log lines so far (pino writes one per line on stdout). */
  lines(): { msg: string; [key: string]: unknown }[];
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** The first log line with this message (or one of these), now or when it comes. */
  waitForLog(msg: string | string[], timeoutMs?: number): Promise<{ msg: string; [key: string]: unknown }>;
  /**
   * A signal to its whole process group, as systemd stops a service and as Ctrl-C in a terminal
   * reaches every process of the command; resolves with the exit code.
   */
  stop(signal?: NodeJS.Signals, o?: { repeatAfterMs?: number }): Promise<number | null>;
  /** SIGKILL to the group, for clean-up after a failed test. */
  kill(): void;
  exited: Promise<number | null>;
}

export function startBotProcess(cwd: string, env: Record<string, string>): BotProcess {
  const { PATH, HOME } = process.env;
  if (startScript() !== START_SCRIPT)
    throw new Error(`npm start is now "${startScript()}": update bot-process.ts`);
  const child = spawn(process.execPath, startArgs, {
    cwd,
    env: { PATH, HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // its own process group, as a service or a terminal command has
    detached: true,
  });
  let out = '';
  let stdout = '';
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };
  child.stdout?.on('data', (d) => {
    out += d;
    stdout += d;
    wake();
  });
  child.stderr?.on('data', (d) => {
    out += d;
    wake();
  });
  let exitCode: number | null | undefined;
  /** The process has exited (its last output may still be in the pipe until 'close'). */
  let gone = false;
  child.on('exit', () => {
    gone = true;
  });
  // 'close', not 'exit': that comes before the last lines are read (a final "stopped" was missed)
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      exitCode = code;
      wake();
      resolve(code);
    }),
  );
  const lines = () =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string });
  return {
    child,
    lines,
    output: () => out,
    exited,
    waitForLog(msg, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines().find((l) => (Array.isArray(msg) ? msg.includes(l.msg) : l.msg === msg));
          if (found) {
            done();
            resolve(found);
          } else if (exitCode !== undefined) {
            done();
            reject(new Error(`the bot exited (${exitCode}) before logging "${msg}":\n${out}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`the bot did not log "${msg}" within ${timeoutMs} ms:\n${out}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM', o = {}) {
      if (!gone) process.kill(-(child.pid as number), signal);
      if (o.repeatAfterMs !== undefined) {
        await new Promise((r) => setTimeout(r, o.repeatAfterMs));
        if (!gone) process.kill(-(child.pid as number), signal);
      }
      return exited;
    },
    kill() {
      try {
        if (!gone) process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}
