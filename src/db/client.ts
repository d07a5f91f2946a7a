/**
 * The database connection: embedded PGlite in a folder under data/ by default, PostgreSQL when
 * DATABASE_URL is set. Either way the same drizzle pg-core API, and pending migrations are
 * applied on open.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { type AnyColumn, type Placeholder, type SQL, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { ConfigError } from '../config.ts';
import { kernelFolderRefusal } from '../kernel-folder.ts';
import { addressOf, CONNECT_TIMEOUT_S, connectFailureReason, UnavailableError } from '../unavailable.ts';
import { pgliteDirRefusal } from './pglite-dir.ts';
import { withPreparedStatements } from './pglite-statements.ts';
import { type Upkeep, upkeep } from './pglite-upkeep.ts';
import * as schema from './schema.ts';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

/** An `execute()` result's rows: postgres-js gives the rows, PGlite a result holding them. */
export function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/**
 * `column = any(values)`, the values one array parameter: one statement whatever their number.
 * (drizzle's inArray writes `in ($1, $2, …)`, a statement per length, and both databases keep
 * each one prepared per connection for as long as it lives.)
 */
export function anyOf(column: AnyColumn | SQL, values: readonly string[] | Placeholder): SQL {
  return sql`${column} = any(${Array.isArray(values) ? sql.param([...values]) : values})`;
}

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** LISTEN on a channel (its own connection on PostgreSQL); resolves with the unlisten. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * PGlite only: VACUUM, ANALYZE and CHECKPOINT as PostgreSQL's own workers would; `all`: every
   * table, whatever changed (pglite-upkeep.ts).
   */
  maintenance?(o?: { all?: boolean }): Promise<Upkeep>;
  close(): Promise<void>;
}

export const MIGRATIONS_DIR = path.resolve(import.meta.dirname, '..', '..', 'migrations');

export interface DatabaseOptions {
  /**
   * postgres:// URL (DATABASE_URL); when unset, PGlite in `pgliteDir` (or in memory when that is
   * `memory://`). A server that cannot be reached is an UnavailableError naming DATABASE_URL.
   */
  url?: string | undefined;
  pgliteDir?: string;
  /** Pool size for PostgreSQL. */
  max?: number;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) {
    const client = postgres(options.url, {
      max: options.max ?? 10,
      onnotice: () => {},
      // a server that accepts the connection and never answers fails start-up in seconds
      connect_timeout: CONNECT_TIMEOUT_S,
      // reconnect soon after an outage: the default backoff grows to 20 s per attempt
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 2),
      // our statements are short index lookups: compiling one (JIT, on past a cost estimate that
      // a long queue reaches) took 40 ms of a 45 ms queue read
      connection: { jit: 'off' },
    });
    try {
      await client`select 1`;
    } catch (err) {
      await client.end({ timeout: 0 }).catch(() => {});
      // one line naming the variable and the cause, instead of the migrator's "Failed query: …"
      throw new UnavailableError('DATABASE_URL', addressOf(options.url, 5432), connectFailureReason(err), {
        cause: err,
      });
    }
    const db = drizzlePostgres(preparing(client), { schema });
    await migratePostgres(db, { migrationsFolder: MIGRATIONS_DIR });
    return {
      db: db as unknown as Db,
      kind: 'postgres',
      async listen(channel, onPayload) {
        // postgres-js re-listens by itself after a reconnect
        const { unlisten } = await client.listen(channel, onPayload);
        return unlisten;
      },
      close: () => client.end({ timeout: 5 }),
    };
  }
  const dir = options.pgliteDir ?? 'data/pglite';
  if (!dir.startsWith('memory://')) {
    const refusal = kernelFolderRefusal(dir, 'PGLITE_DIR') ?? pgliteDirRefusal(dir);
    if (refusal) throw new ConfigError([refusal]);
    mkdirSync(dir, { recursive: true });
  }
  // (bytea parameters go in binary: withPreparedStatements)
  const client = await PGlite.create(dir);
  const db = drizzlePglite(withPreparedStatements(client), { schema });
  await migratePglite(db, { migrationsFolder: MIGRATIONS_DIR });
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    listen: (channel, onPayload) => client.listen(channel, onPayload),
    maintenance: (o) => upkeep(client, o),
    close: () => client.close(),
  };
}

/**
 * The client with its statements prepared on the server (postgres-js's own default), which
 * drizzle turns off for all but the ones it is asked to name: parsed and planned once per
 * connection instead of on every call (the fair claim planned in 1.2 ms and ran in 1). A
 * statement without parameters goes as before (a simple query: a migration's many statements).
 */
function preparing(sql: postgres.Sql): postgres.Sql {
  return new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop === 'unsafe') {
        return (query: string, args?: unknown[], options?: object) =>
          target.unsafe(query, args as postgres.ParameterOrJSON<never>[], {
            ...options,
            ...(args && args.length > 0 ? { prepare: true } : {}),
          });
      }
      if (prop === 'begin') {
        return (...a: unknown[]) => {
          const fn = a.pop() as (tx: postgres.Sql) => unknown;
          return (target.begin as (...b: unknown[]) => unknown)(...a, (tx: postgres.Sql) =>
            fn(preparing(tx)),
          );
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
}

/** Runs `fn` in one transaction, handing it the transaction as a plain `Db`. */
export function inTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  // drizzle types a transaction apart from its database; both drivers' share the Db API we use
  return db.transaction((tx) => fn(tx as unknown as Db));
}
