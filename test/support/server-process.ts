// The process side of the private test servers (see private-servers.ts): a free port, a folder
// of its own, start and wait for the ready line, and the signals that make a server go away.
// Signals reach every process of a server, PostgreSQL's backends included: a paused PostgreSQL
// keeps its sockets open and answers nothing, and after a kill no orphan backend holds the shared
// memory that would stop the restart. Servers left behind by a test that forgot destroy() are
// killed when the test process exits; those of a process that was itself killed are swept the
// next time a private server starts.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PrivateServer {
  readonly port: number;
  /** Connection URL (redis:// or postgres://). */
  readonly url: string;
  /** Folder holding the server's data and socket; deleted by destroy(). */
  readonly dir: string;
  /** True between a successful start and stop/kill. */
  readonly running: boolean;
  /** SIGSTOP: connections stay open and nothing answers, as with a hung server or host. */
  pause(): void;
  resume(): void;
  /** Orderly shutdown; waits for the process to exit. */
  stop(): Promise<void>;
  /** SIGKILL, as in a crash; waits for the process to exit. */
  kill(): Promise<void>;
  /** Starts again on the same port (PostgreSQL keeps its data; Redis starts empty). */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Kills the server if still running and deletes its folder; safe to call twice. */
  destroy(): Promise<void>;
}

const PREFIX = 'hiresbot-private-';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

// --- process bookkeeping -----------------------------------------------------------------------

const live = new Set<{ child: ChildProcess; dir: string }>();

process.once('exit', () => {
  for (const { child, dir } of live) {
    signalGroup(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Signals the server and every process under it. PostgreSQL puts each backend in a process group
 * of its own (setsid), so a group signal alone would leave open connections answering.
 */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): number[] {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return [];
  return signalTree(child.pid, signal);
}

/** Returns the pids signalled. */
function signalTree(root: number, signal: NodeJS.Signals): number[] {
  const pids = [root, ...descendants(root)];
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
  return pids;
}

/** Children, grandchildren … of `pid`, from /proc (empty where there is no /proc). */
function descendants(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // "pid (comm) state ppid …"; comm may hold spaces and parentheses
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills the servers and removes the folders of test processes that died without cleaning up. */
function sweepAbandoned(): void {
  for (const name of readdirSync(tmpdir())) {
    const owner = Number(/^hiresbot-private-\w+-(\d+)-/.exec(name)?.[1]);
    if (!owner || alive(owner)) continue;
    const dir = path.join(tmpdir(), name);
    try {
      const pid = Number(readFileSync(path.join(dir, 'server.pid'), 'utf8'));
      if (pid > 0 && alive(pid)) signalTree(pid, 'SIGKILL');
    } catch {
      // no pid file: the server never started
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface Launch {
  command: string;
  args: string[];
  /** Output line that says the server accepts connections. */
  ready: RegExp;
  account?: { uid: number; gid: number } | undefined;
}

/** Spawns the server in its own process group and waits for its ready line. */
async function launch(dir: string, l: Launch): Promise<ChildProcess> {
  const child = spawn(l.command, l.args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(l.account ?? {}),
  });
  const entry = { child, dir };
  live.add(entry);
  child.once('exit', () => live.delete(entry));
  if (child.pid) writeFileSync(path.join(dir, 'server.pid'), String(child.pid));
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${l.command} not ready after ${START_TIMEOUT_MS} ms:\n${output}`)),
        START_TIMEOUT_MS,
      );
      const onData = (chunk: Buffer) => {
        output += chunk;
        if (l.ready.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${l.command} exited (${signal ?? code}) before it was ready:\n${output}`));
      });
    });
  } catch (err) {
    signalGroup(child, 'SIGKILL');
    await exited(child);
    throw err;
  }
  // keep draining the output so the server never blocks on a full pipe; never keep a test alive
  child.stdout?.resume();
  child.stderr?.resume();
  child.unref();
  for (const s of [child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  return child;
}

export interface ServerKind {
  name: string;
  /** Signal for an orderly shutdown. */
  stopSignal: NodeJS.Signals;
  url(port: number): string;
  launch(port: number): Launch;
  /** Runs once after the first start (PostgreSQL: set the password). */
  afterFirstStart?(port: number): Promise<void>;
}

export async function startServer(kind: ServerKind, dir: string): Promise<PrivateServer> {
  let child: ChildProcess | undefined;
  let port = 0;
  let destroyed = false;

  // a free port can be taken between the probe and the bind: try a few
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      child = await launch(dir, kind.launch(port));
      break;
    } catch (err) {
      if (attempt >= 4 || !/in use|EADDRINUSE|could not bind/i.test(String(err))) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  await kind.afterFirstStart?.(port);

  const end = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c) return;
    child = undefined;
    signalGroup(c, 'SIGCONT'); // a paused server cannot act on SIGTERM
    const pids = signalGroup(c, signal);
    const timer = setTimeout(() => signalGroup(c, 'SIGKILL'), STOP_TIMEOUT_MS);
    await exited(c);
    clearTimeout(timer);
    // a killed postmaster's backends die on their own signal: wait until none holds the port
    for (let i = 0; i < 250 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 20));
  };

  const server: PrivateServer = {
    get port() {
      return port;
    },
    url: kind.url(port),
    dir,
    get running() {
      return child !== undefined;
    },
    pause() {
      if (!child) throw new Error(`private ${kind.name} is not running`);
      signalGroup(child, 'SIGSTOP');
    },
    resume() {
      if (child) signalGroup(child, 'SIGCONT');
    },
    stop: () => end(kind.stopSignal),
    kill: () => end('SIGKILL'),
    async start() {
      if (destroyed) throw new Error(`private ${kind.name} was destroyed`);
      if (child) return;
      child = await launch(dir, kind.launch(port));
    },
    async restart() {
      await server.stop();
      await server.start();
    },
    async destroy() {
      destroyed = true;
      await end('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

export function privateDir(kind: string): string {
  sweepAbandoned();
  return mkdtempSync(path.join(tmpdir(), `${PREFIX}${kind}-${process.pid}-`));
}
