// Cases a review found where PGlite with prepared statements answered unlike PGlite's own query().
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPreparedStatements } from '../../src/db/pglite-statements.ts';

describe('PGlite with prepared statements, against misuse', () => {
  let raw: PGlite;
  let pg: PGlite;
  beforeAll(async () => {
    raw = await PGlite.create('memory://');
    pg = withPreparedStatements(raw);
  });
  afterAll(async () => {
    await raw?.close();
  });

  it('prepares a statement again after DEALLOCATE ALL dropped its name from the server', async () => {
    expect((await pg.query('select $1::int + 1 as x', [1])).rows).toEqual([{ x: 2 }]);
    await pg.query('deallocate all');
    // PGlite's own query() runs it; before the fix every later call failed with 26000
    expect((await pg.query('select $1::int + 1 as x', [2])).rows).toEqual([{ x: 3 }]);
    expect((await pg.query('select $1::int + 1 as x', [3])).rows).toEqual([{ x: 4 }]);
  });

  it('refuses a transaction object used after its transaction, as PGlite does', async () => {
    let leaked: { query: PGlite['query'] } | undefined;
    await pg.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked?.query('select $1::int as a', [1])).rejects.toThrow('Transaction is closed');
    await expect(leaked?.query('select 1 as a')).rejects.toThrow('Transaction is closed');
  });

  it('keeps a text asked with other parameter types apart, as PGlite does', async () => {
    const text = 'select $1 as v, pg_typeof($1)::text as t';
    expect((await pg.query(text, ['5'], { paramTypes: [23] })).rows).toEqual([{ v: 5, t: 'integer' }]);
    expect((await pg.query(text, ['5'], { paramTypes: [25] })).rows).toEqual([{ v: '5', t: 'text' }]);
  });

  it("hands a statement's notices to onNotice, as PGlite does", async () => {
    await raw.exec(`create function noisy(x int) returns int language plpgsql as $$
      begin raise notice 'hello %', x; return x; end $$;`);
    const notices: string[] = [];
    await pg.query('select noisy($1) as v', [1], { onNotice: (m) => notices.push(m.message ?? '') });
    expect(notices).toEqual(['hello 1']);
  });

  it('runs nothing on a database that is closing or closed, as PGlite does', async () => {
    const own = await PGlite.create('memory://');
    const wrapped = withPreparedStatements(own);
    await wrapped.query('select $1::int as a', [1]);
    const closing = own.close();
    // close() has taken and released the locks and is ending the backend
    while (own.ready) await Promise.resolve();
    const during = wrapped.query('select $1::int as a', [2]);
    await closing;
    await expect(during).rejects.toThrow('PGlite is closing');
    await expect(wrapped.query('select $1::int as a', [3])).rejects.toThrow('PGlite is closed');
  });
});
