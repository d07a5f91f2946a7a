// `npm start` on a fresh machine: no .env, no token, no model → one friendly line per missing piece.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabase } from './support/databases.ts';
import { TINY_CHECKPOINT, TINY_VAE } from './support/safetensors.ts';
import { writeTinyModel } from './support/tiny-model.ts';

const root = path.resolve(import.meta.dirname, '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

function start(cwd: string, env: Record<string, string> = {}) {
  const { PATH, HOME } = process.env;
  return spawnSync(tsx, [path.join(root, 'src', 'main.ts')], {
    cwd,
    env: { PATH, HOME, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('npm start without configuration', () => {
  it('exits 1 listing the token and the model folder, with no stack trace', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    const run = start(cwd);
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines[0]).toBe('hiresbot cannot start:');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain('DISCORD_TOKEN is not set and there is no .env file');
    expect(lines[1]).toContain('cp .env.example .env');
    expect(lines[2]).toContain('No Stable Diffusion model in models (folder not found)');
    expect(lines[2]).toContain('README "Get a model"');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('names only the model when the token is in .env', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    writeFileSync(path.join(cwd, '.env'), 'DISCORD_TOKEN=abc.def.ghi\n');
    mkdirSync(path.join(cwd, 'models'));
    const run = start(cwd);
    expect(run.status).toBe(1);
    expect(run.stderr).not.toContain('DISCORD_TOKEN');
    expect(run.stderr).toContain('No Stable Diffusion model in models:');
  });

  it('refuses a checkpoint it cannot import at once, saying what it is', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    writeFileSync(path.join(cwd, '.env'), 'DISCORD_TOKEN=abc.def.ghi\n');
    mkdirSync(path.join(cwd, 'models'));
    copyFileSync(TINY_VAE, path.join(cwd, 'models', 'vae-ft-mse.safetensors'));
    const run = start(cwd);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      'hiresbot cannot start:\n  - vae-ft-mse.safetensors is a VAE, not a checkpoint: pass it with --vae (or MODEL_VAE)\n',
    );
  });

  it('refuses MODEL_VAE beside an ONNX folder, whose VAE was fixed when it was exported', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    const model = path.join(cwd, 'models', 'tiny-sd');
    writeTinyModel(model, { layout: 'optimum' });
    copyFileSync(TINY_VAE, path.join(cwd, 'vae.safetensors'));
    writeFileSync(path.join(cwd, '.env'), 'DISCORD_TOKEN=abc.def.ghi\nMODEL_VAE=vae.safetensors\n');
    const run = start(cwd);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      `hiresbot cannot start:\n  - MODEL_VAE applies to .safetensors checkpoints only, and ${path.join('models', 'tiny-sd')} is an ONNX folder (its VAE and precision were fixed when it was exported): leave MODEL_VAE empty.\n`,
    );
  });

  it('refuses a PGLITE_DIR under /proc in one line (mkdir there spun for ever)', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    writeTinyModel(path.join(cwd, 'models', 'tiny-sd'), { layout: 'optimum' });
    writeFileSync(path.join(cwd, '.env'), 'DISCORD_TOKEN=abc.def.ghi\nPGLITE_DIR=/proc/hiresbot/db\n');
    const run = start(cwd);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      "hiresbot cannot start:\n  - PGLITE_DIR /proc/hiresbot/db is under /proc, the kernel's own file system, where no folder can be made: choose another folder\n",
    );
  });

  it('a gateway or a worker without DATABASE_URL: one line naming both variables', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    // a gateway loads no model, so none is asked for
    const gateway = start(cwd, { PROCESS_ROLE: 'gateway', DISCORD_TOKEN: 'abc.def.ghi' });
    expect(gateway.status).toBe(1);
    expect(gateway.stderr).toBe(
      'hiresbot cannot start:\n  - PROCESS_ROLE=gateway needs DATABASE_URL: the gateway and its workers share one PostgreSQL (PGlite serves one process only).\n',
    );
    const worker = start(cwd, { PROCESS_ROLE: 'Worker', DISCORD_TOKEN: 'abc.def.ghi' });
    expect(worker.status).toBe(1);
    expect(worker.stderr).toContain('  - PROCESS_ROLE=worker needs DATABASE_URL: ');
    expect(worker.stderr).toContain('No Stable Diffusion model in models');
    const typo = start(cwd, { PROCESS_ROLE: 'workers' });
    expect(typo.stderr).toContain('PROCESS_ROLE must be one of all, gateway, worker (got "workers")');
  });

  it('names an invalid setting with its range instead of starting', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    const run = start(cwd, { ENGINE_WORKERS: 'two' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('ENGINE_WORKERS must be a whole number from 1 to 16 (got "two")');
  });
});

describe('npm start with everything in place but a token Discord rejects', () => {
  it.each([
    [
      'an ONNX folder',
      (models: string) => writeTinyModel(path.join(models, 'tiny-sd'), { layout: 'optimum' }),
    ],
    [
      'a .safetensors checkpoint',
      (models: string) => copyFileSync(TINY_CHECKPOINT, path.join(models, 'baka.safetensors')),
    ],
  ])(
    'loads the model (%s) and database, then stops with one line that does not contain the token',
    async (what, drop) => {
      const requests: string[] = [];
      // Discord's answer to a bad token: 401 on GET /gateway/bot (see the discord-wire notes)
      const server = createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: '401: Unauthorized', code: 0 }));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as { port: number };
      const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
      mkdirSync(path.join(cwd, 'models'));
      drop(path.join(cwd, 'models'));
      const token = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.Gsecret.definitely-not-valid';
      writeFileSync(
        path.join(cwd, '.env'),
        `DISCORD_TOKEN=${token}\nDISCORD_API_URL=http://127.0.0.1:${port}/api\nLOG_LEVEL=info\n`,
      );
      const { PATH, HOME } = process.env;
      const child = spawn(tsx, [path.join(root, 'src', 'main.ts')], { cwd, env: { PATH, HOME } });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      // 'close': after the last output has been read ('exit' can come first)
      const code = await new Promise<number | null>((r) => child.on('close', r));
      server.close();
      expect(code).toBe(1);
      expect(requests).toContain('GET /api/v10/gateway/bot');
      expect(out).toContain('model loaded');
      if (what === 'a .safetensors checkpoint') {
        expect(out).toContain('100% (VAE encoder)');
        expect(out).toMatch(
          /imported models\/baka\.safetensors into data\/model-cache\/baka-[0-9a-f]{8}-fp32 in/,
        );
        expect(out).toContain('"name":"baka","hash":"cc9fbb7dc1"');
      }
      expect(out).toMatch(/hiresbot stopped: An invalid token was provided\.\n$/);
      expect(out).not.toContain('Gsecret');
      expect(out).not.toMatch(/\n\s+at /);
    },
    // a whole start-up in a child process (an import, a model load, PGlite's first migration)
    180_000,
  );
});

describe('npm start with a DATABASE_URL or REDIS_URL that leads nowhere', () => {
  /** A folder with a token and a tiny model, so that start-up gets as far as the servers. */
  function readyFolder(env: string): string {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    writeTinyModel(path.join(cwd, 'models', 'tiny-sd'), { layout: 'optimum' });
    writeFileSync(path.join(cwd, '.env'), `DISCORD_TOKEN=abc.def.ghi\n${env}\n`);
    return cwd;
  }
  /** Runs `npm start`; `at(text)` is when a line containing `text` arrived on stdout. */
  async function run(cwd: string) {
    const { PATH, HOME } = process.env;
    const child = spawn(tsx, [path.join(root, 'src', 'main.ts')], { cwd, env: { PATH, HOME } });
    let stdout = '';
    let stderr = '';
    const arrivals: { at: number; text: string }[] = [];
    child.stdout.on('data', (d) => {
      stdout += d;
      arrivals.push({ at: Date.now(), text: String(d) });
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    // 'close': after the last output has been read ('exit' can come first)
    const code = await new Promise<number | null>((r) => child.on('close', r));
    const at = (text: string) => arrivals.find((a) => a.text.includes(text))?.at;
    return { code, stdout, stderr, exitedAt: Date.now(), at };
  }
  async function listen(server: ReturnType<typeof createTcpServer>) {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as { port: number }).port;
  }

  it('nothing at DATABASE_URL: one line naming it and the cause, not the password or the query', async () => {
    const probe = createTcpServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r)); // now nothing listens there
    const cwd = readyFolder(`DATABASE_URL=postgres://bot:s3cret-pw@127.0.0.1:${port}/hires`);
    const out = await run(cwd);
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(
      `hiresbot cannot start:\n  - DATABASE_URL: cannot connect to 127.0.0.1:${port} (connection refused)\n`,
    );
    expect(out.stdout + out.stderr).not.toContain('s3cret-pw');
    expect(out.stdout + out.stderr).not.toContain('Failed query');
  });

  it('a PGLITE_DIR holding other files: one line naming it, and nothing written among them', async () => {
    const cwd = readyFolder('PGLITE_DIR=mine');
    mkdirSync(path.join(cwd, 'mine', 'photos'), { recursive: true });
    writeFileSync(path.join(cwd, 'mine', 'notes.txt'), 'mine');
    const out = await run(cwd);
    expect(out.code).toBe(1);
    expect(out.stderr).toBe(
      `hiresbot cannot start:\n  - PGLITE_DIR ${path.join(cwd, 'mine')} holds other files (notes.txt, photos), not a PGlite database: name a new or empty folder\n`,
    );
    expect(readdirSync(path.join(cwd, 'mine')).sort()).toEqual(['notes.txt', 'photos']);
  });

  it('a REDIS_URL server that never answers: one line naming it, within 10 s, no ioredis stack', async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((s) => sockets.push(s));
    const port = await listen(silent);
    // PostgreSQL rather than a new PGlite folder, whose creation takes half a minute on a busy machine
    const db = await freshDatabase('postgres');
    try {
      const url = 'url' in db.location ? db.location.url : '';
      const cwd = readyFolder(`DATABASE_URL=${url}\nREDIS_URL=redis://:r3dis-pw@127.0.0.1:${port}`);
      const out = await run(cwd);
      expect(out.code).toBe(1);
      expect(out.stderr).toBe(
        `hiresbot cannot start:\n  - REDIS_URL: cannot connect to 127.0.0.1:${port} (timed out after 8 s)\n`,
      );
      expect(out.stdout + out.stderr).not.toContain('r3dis-pw');
      expect(out.stdout).not.toContain('model loaded'); // Redis is checked before the model loads
      // from the moment the database was ready (Redis comes next) to the exit
      expect(out.exitedAt - (out.at('database ready') ?? 0)).toBeLessThan(10_000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      await db.destroy();
    }
  });
});
