// PGLITE_DIR: a new, empty or PGlite folder opens; a folder of someone else's files is refused.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.ts';
import { openDatabase } from '../../src/db/client.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-pglite-dir-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

it('opens an empty folder, then again the PGlite database it made there', async () => {
  const dir = path.join(work, 'empty');
  mkdirSync(dir);
  await (await openDatabase({ pgliteDir: dir })).close();
  const again = await openDatabase({ pgliteDir: dir });
  expect(again.kind).toBe('pglite');
  await again.close();
}, 60_000);

it("opens a mount point's empty folder (lost+found) or one holding only a .gitkeep", async () => {
  const dir = path.join(work, 'volume');
  mkdirSync(path.join(dir, 'lost+found'), { recursive: true });
  writeFileSync(path.join(dir, '.gitkeep'), '');
  const db = await openDatabase({ pgliteDir: dir });
  expect(db.kind).toBe('pglite');
  await db.close();
}, 60_000);

it('refuses a folder holding other files, or a file, naming PGLITE_DIR', async () => {
  const dir = path.join(work, 'mine');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'a.txt'), 'a');
  writeFileSync(path.join(dir, 'b.txt'), 'b');
  mkdirSync(path.join(dir, 'c'));
  mkdirSync(path.join(dir, 'd'));
  const refused = await openDatabase({ pgliteDir: dir }).catch((err: unknown) => err);
  expect(refused).toBeInstanceOf(ConfigError);
  expect((refused as ConfigError).problems).toEqual([
    `PGLITE_DIR ${dir} holds other files (a.txt, b.txt, c, …), not a PGlite database: name a new or empty folder`,
  ]);
  const file = path.join(dir, 'a.txt');
  await expect(openDatabase({ pgliteDir: file })).rejects.toThrow(
    `PGLITE_DIR ${file} is a file, not a folder: name a new or empty folder`,
  );
});
