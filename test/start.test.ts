// `npm start` on a fresh machine: no .env, no token, no model → one friendly line per missing piece.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
    expect(lines[2]).toContain('No Stable Diffusion ONNX model in models (folder not found)');
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
    expect(run.stderr).toContain('No Stable Diffusion ONNX model in models:');
  });

  it('names an invalid setting with its range instead of starting', () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'hiresbot-start-'));
    const run = start(cwd, { ENGINE_WORKERS: 'two' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('ENGINE_WORKERS must be a whole number from 1 to 16 (got "two")');
  });
});

describe('npm start with everything in place but a token Discord rejects', () => {
  it('loads the model and database, then stops with one line that does not contain the token', async () => {
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
    writeTinyModel(path.join(cwd, 'models', 'tiny-sd'), { layout: 'optimum' });
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
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    server.close();
    expect(code).toBe(1);
    expect(requests).toContain('GET /api/v10/gateway/bot');
    expect(out).toContain('model loaded');
    expect(out).toMatch(/hiresbot stopped: An invalid token was provided\.\n$/);
    expect(out).not.toContain('Gsecret');
    expect(out).not.toMatch(/\n\s+at /);
  });
});
