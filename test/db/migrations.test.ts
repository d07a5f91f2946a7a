// migrations/ must match src/db/schema.ts: drizzle-kit, run against a copy, finds nothing to add.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');
const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-migrations-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('migrations/', () => {
  it('is up to date with the schema (npm run db:generate would write nothing)', () => {
    const out = path.join(work, 'migrations');
    cpSync(path.join(root, 'migrations'), out, { recursive: true });
    const config = path.join(work, 'drizzle.config.json');
    writeFileSync(
      config,
      // drizzle-kit resolves `out` against the working directory: give it a relative path
      JSON.stringify({ dialect: 'postgresql', schema: './src/db/schema.ts', out: path.relative(root, out) }),
    );
    const before = readdirSync(out).sort();
    const run = spawnSync(
      path.join(root, 'node_modules', '.bin', 'drizzle-kit'),
      ['generate', `--config=${config}`],
      {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    // drizzle-kit exits 0 even on errors: read what it said
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('No schema changes');
    expect(readdirSync(out).sort()).toEqual(before);
  });
});
