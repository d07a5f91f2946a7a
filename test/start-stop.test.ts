// `npm start` stopped (SIGTERM) before it is up: during the checkpoint's import, before it, and
// while Discord does not answer.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BotProcess, startBotProcess } from './support/bot-process.ts';
import { TINY_CHECKPOINT } from './support/safetensors.ts';
import { writeTinyModel } from './support/tiny-model.ts';

const folders: string[] = [];
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

/** A folder `npm start` runs in: a token, Discord at `apiUrl`, and a checkpoint or an ONNX model. */
function botFolderWith(model: 'checkpoint' | 'onnx', apiUrl = 'http://127.0.0.1:9/api'): string {
  const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
  folders.push(cwd);
  if (model === 'onnx') writeTinyModel(path.join(cwd, 'models', 'tiny-sd'), { layout: 'optimum' });
  else {
    mkdirSync(path.join(cwd, 'models'));
    copyFileSync(TINY_CHECKPOINT, path.join(cwd, 'models', 'baka.safetensors'));
  }
  writeFileSync(path.join(cwd, '.env'), `DISCORD_TOKEN=abc.def.ghi\nDISCORD_API_URL=${apiUrl}\n`);
  return cwd;
}

/** SIGTERM once `line` is logged; the exit code and everything the bot wrote. */
async function stopAtLog(bot: BotProcess, line: string): Promise<{ code: number | null; out: string }> {
  await bot.waitForLog(line, 60_000);
  bot.child.kill('SIGTERM');
  const code = await bot.exited;
  return { code, out: bot.output() };
}

describe('npm start stopped while it imports its checkpoint', () => {
  it('ends at once and leaves no half-written import behind', async () => {
    const cwd = botFolderWith('checkpoint');
    const cache = path.join(cwd, 'data', 'model-cache');
    const importing = () => {
      try {
        return readdirSync(cache).filter((n) => n.includes('.importing-'));
      } catch {
        return [];
      }
    };
    const bot = startBotProcess(cwd, {});
    // the signal goes the moment the import's temporary folder exists
    let seen: string[] = [];
    const poll = setInterval(() => {
      seen = importing();
      if (seen.length > 0) {
        clearInterval(poll);
        bot.child.kill('SIGTERM');
      }
    }, 2);
    const code = await bot.exited;
    clearInterval(poll);
    const out = bot.output();
    expect(seen, out).toHaveLength(1);
    // a clean end (a process with no handler is killed by the signal: code null), nothing left
    expect(code, out).toBe(0);
    expect(importing()).toEqual([]);
    expect(out).not.toContain('model loaded');
  }, 120_000);
  it('does not begin the import when stopped before it (a checkpoint import may take minutes)', async () => {
    const cwd = botFolderWith('checkpoint');
    // the database is up: the checkpoint's hashing and import come next
    const { code, out } = await stopAtLog(startBotProcess(cwd, {}), 'database ready (migrations applied)');
    expect(code, out).toBe(0);
    // nothing imported after the stop: with a real checkpoint that went past the stop's deadline
    const cache = path.join(cwd, 'data', 'model-cache');
    const cached = existsSync(cache) ? readdirSync(cache) : [];
    expect(cached.filter((n) => n !== '.optimized')).toEqual([]);
    expect(out).not.toContain('model loaded');
  }, 120_000);
});

describe('npm start stopped while Discord does not answer', () => {
  it('stops its services and ends cleanly, not at the stop deadline', async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as { port: number };
    const cwd = botFolderWith('onnx', `http://127.0.0.1:${port}/api`);
    const bot = startBotProcess(cwd, {});
    try {
      // the services are up: the bot now connects, to a server that accepts and never answers
      const { code, out } = await stopAtLog(bot, 'jobs ready');
      expect(code, out).toBe(0);
      expect(out).toContain('stopped before the connection to Discord was made');
      expect(out).not.toContain('did not stop in time');
    } finally {
      bot.kill();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  }, 120_000);
});

describe('npm start stopped while its model loads', () => {
  it('recovers no jobs after the load, and ends cleanly', async () => {
    const cwd = botFolderWith('onnx');
    // the database is up: the model's load comes next, then the jobs' recovery
    const { code, out } = await stopAtLog(startBotProcess(cwd, {}), 'database ready (migrations applied)');
    expect(code, out).toBe(0);
    expect(out).not.toContain('jobs ready');
    expect(out).toMatch(/"msg":"stopped"/);
  }, 120_000);
});
