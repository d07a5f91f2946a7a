// PGlite with prepared statements answers exactly as PGlite's own query() does (the reference:
// the same statement through the unwrapped PGlite), keeps at most its bound of statements on the
// server, survives errors and a table changing shape, and still delivers notifications.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPreparedStatements } from '../../src/db/pglite-statements.ts';

describe('PGlite with prepared statements', () => {
  let dir: string;
  let raw: PGlite;
  let pg: PGlite;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hiresbot-pglite-statements-'));
    raw = await PGlite.create(dir);
    pg = withPreparedStatements(raw);
    await raw.exec(`
      create table t (id text primary key, n int not null, big bigint, ok boolean, doc jsonb,
        at timestamptz, tags text[], data bytea);
    `);
  });
  afterAll(async () => {
    await raw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const preparedNames = async (): Promise<string[]> =>
    (await raw.query<{ name: string }>('select name from pg_prepared_statements')).rows.map((r) => r.name);

  it('gives the rows and fields PGlite itself gives, in both row modes and with parsers', async () => {
    const row = [
      'a',
      7,
      9007199254740993n,
      true,
      { k: ['v', 1] },
      new Date('2026-11-26T10:00:00.123Z'),
      ['x', 'y z'],
      new Uint8Array([0, 255, 128, 7]),
    ];
    await pg.query('insert into t values ($1, $2, $3, $4, $5, $6, $7, $8)', row);
    await pg.query('insert into t (id, n) values ($1, $2)', ['b', 8]);
    const text = 'select * from t where n >= $1 order by id';
    // drizzle's own options: timestamps kept as text
    const asText = { [types.TIMESTAMPTZ]: (v: string) => v };
    for (const options of [
      undefined,
      { rowMode: 'array' as const },
      { rowMode: 'object' as const, parsers: asText },
    ]) {
      const want = await raw.query(text, [7], options);
      const got = await pg.query(text, [7], options);
      expect(got.rows).toEqual(want.rows);
      expect(got.fields).toEqual(want.fields);
    }
    const [first] = (await pg.query<{ data: Uint8Array; big: bigint }>(text, [7])).rows;
    expect([...(first?.data ?? [])]).toEqual([0, 255, 128, 7]);
    expect(first?.big).toBe(9007199254740993n);
    const updated = await pg.query('update t set n = n + $1 where n >= $2', [1, 0]);
    expect(updated.affectedRows).toBe(2);
  });

  it('parses a statement once, and keeps at most 200 of them on the server', async () => {
    const text = 'select n from t where id = $1';
    for (let i = 0; i < 5; i++) await pg.query(text, ['a']);
    const same = (
      await raw.query<{ n: number }>(
        'select count(*)::int as n from pg_prepared_statements where statement = $1',
        [text],
      )
    ).rows;
    expect(same[0]?.n).toBe(1);
    for (let i = 0; i < 260; i++) await pg.query(`select $1::int + ${i} as v`, [i]);
    // 200 kept: the one each new statement pushes out is closed in the same crossing
    const names = await preparedNames();
    expect(names).toHaveLength(200);
    // the last one is kept: run again, it answers right from the same statement on the server
    expect((await pg.query<{ v: number }>('select $1::int + 259 as v', [1])).rows[0]?.v).toBe(260);
    expect((await preparedNames()).sort()).toEqual([...names].sort());
  });

  it('answers after an error, and a failed transaction leaves nothing', async () => {
    await expect(pg.query('insert into t (id, n) values ($1, $2)', ['a', 1])).rejects.toMatchObject({
      code: '23505',
    });
    await expect(
      pg.transaction(async (tx) => {
        await tx.query('insert into t (id, n) values ($1, $2)', ['c', 3]);
        await tx.query('insert into t (id, n) values ($1, $2)', ['a', 1]);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    const ids = (await pg.query<{ id: string }>('select id from t where n > $1 order by id', [-1])).rows;
    expect(ids.map((r) => r.id)).toEqual(['a', 'b']);
    const committed = await pg.transaction(async (tx) => {
      await tx.query('insert into t (id, n) values ($1, $2)', ['d', 4]);
      return (await tx.query<{ n: number }>('select count(*)::int as n from t where id = $1', ['d'])).rows[0]
        ?.n;
    });
    expect(committed).toBe(1);
  });

  it('prepares a statement again when its table changes shape', async () => {
    const text = 'select * from t where id = $1';
    expect(Object.keys((await pg.query<object>(text, ['b'])).rows[0] ?? {})).not.toContain('extra');
    await raw.exec("alter table t add column extra text default 'new'");
    const [row] = (await pg.query<{ extra: string }>(text, ['b'])).rows;
    expect(row?.extra).toBe('new');
  });

  it('runs queries and transactions side by side without losing one', async () => {
    const work = Array.from({ length: 40 }, (_, i) =>
      i % 4 === 0
        ? pg.transaction(async (tx) => {
            await tx.query('insert into t (id, n) values ($1, $2)', [`p${i}`, i]);
            await tx.query('update t set n = n + $1 where id = $2', [1000, `p${i}`]);
          })
        : pg.query('insert into t (id, n) values ($1, $2)', [`p${i}`, i]),
    );
    await Promise.all(work);
    const [sum] = (await pg.query<{ s: number }>('select sum(n)::int as s from t where id like $1', ['p%']))
      .rows;
    // 0..39, plus 1000 for each of the 10 transactions
    expect(sum?.s).toBe((39 * 40) / 2 + 10 * 1000);
  });

  it('still delivers notifications', async () => {
    const heard: string[] = [];
    const unlisten = await raw.listen('news', (payload) => heard.push(payload));
    await pg.query('select pg_notify($1, $2)', ['news', 'one']);
    await pg.transaction((tx) => tx.query('select pg_notify($1, $2)', ['news', 'two']));
    await new Promise((r) => setTimeout(r, 20));
    await unlisten();
    expect(heard).toEqual(['one', 'two']);
  });
});
