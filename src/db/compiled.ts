/**
 * Statements whose SQL is written once. drizzle writes a statement's text anew on every call, and
 * for the busiest ones that was a tenth of a job's bookkeeping on PGlite (0.2 ms for a new job's
 * insert, 0.1 ms for a claim, measured). A compiled statement is built on its first call, with a
 * placeholder wherever a value goes; each call fills the placeholders in and runs it on the
 * database or transaction it is given, through drizzle's session as a built query runs.
 */
import { type Placeholder, type SQL, type SQLWrapper, sql } from 'drizzle-orm';
import { type PgColumn, PgDialect } from 'drizzle-orm/pg-core';
import { type Db, rowsOf } from './client.ts';

/** A placeholder for each value: in a builder's values() it is encoded as its column's values are. */
export type Slots<V> = { readonly [K in keyof V & string]: Placeholder<K, V[K]> };

/** A statement's value, or the slot it goes in when the statement is compiled. */
export type Value<T = string> = T | Placeholder;

/** What a statement returns, as in a builder's returning(): mapped to objects with these keys. */
export type Returning = Record<string, PgColumn | SQL | SQL.Aliased>;

// the project's databases write no casing of their own, so one dialect writes for both drivers
const dialect = new PgDialect();

// each slot named where it goes: spread, this proxy would give nothing, so that throws instead
const slots = new Proxy(
  {},
  {
    get: (_target, name) => (typeof name === 'string' ? sql.placeholder(name) : undefined),
    ownKeys: () => {
      throw new Error('a compiled statement names each slot it uses');
    },
  },
);

/**
 * A statement built by `build` on first use; a call resolves with its rows, mapped by `returning`
 * when given (the same object the builder's returning() was given), else as the driver gives
 * them (snake_case names, values as the driver parses them). A value that must be NULL-safe through a column's
 * encoder (a jsonb or timestamp column that may be null) goes in raw, as `sql\`${slot}\``.
 */
export function compiled<V extends Record<string, unknown>, R = unknown>(
  build: (slot: Slots<V>, db: Db) => SQLWrapper,
  returning?: Returning,
): (db: Db, values: V) => Promise<R[]> {
  let query: { sql: string; params: unknown[] } | undefined;
  const fields = returning && Object.entries(returning).map(([key, field]) => ({ path: [key], field }));
  return async (db, values) => {
    query ??= dialect.sqlToQuery(build(slots as Slots<V>, db).getSQL());
    const prepared = db._.session.prepareQuery(query, fields, undefined, fields !== undefined);
    const result = await prepared.execute(values);
    return (fields ? result : rowsOf(result)) as R[];
  };
}
