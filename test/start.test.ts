// `npm start` on a fresh machine: no .env, no token, no model → one friendly line per missing piece.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

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
