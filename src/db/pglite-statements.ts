/**
 * PGlite with its statements prepared once. PGlite's own `query()` parses and describes every
 * statement anew and crosses into WebAssembly six times for it (parse, describe, bind, describe,
 * execute, sync); a job's bookkeeping is about ten statements, and those crossings and the
 * parsing and planning were most of its time. Here a statement with parameters is parsed once
 * under a name (PostgreSQL keeps its parse, and its plan once a generic one is as good) and each
 * run is one crossing: bind, describe, execute, sync. Statements without parameters (BEGIN,
 * migrations) go through PGlite as before.
 */
import {
  type messages,
  type PGlite,
  protocol,
  type QueryOptions,
  type Results,
  type Transaction,
} from '@electric-sql/pglite';

type BackendMessage = messages.BackendMessage;
type Parser = (value: string, type: number) => unknown;

const BYTEA_OID = 17;

/** Named statements kept per database: a bound, whatever texts come (a list written out per length). */
const MAX_STATEMENTS = 200;

interface Statement {
  name: string;
  paramTypes: number[];
}

type Query = <T>(text: string, params?: unknown[], options?: QueryOptions) => Promise<Results<T>>;

interface Locks {
  _checkReady(): Promise<void>;
  _runExclusiveQuery<T>(fn: () => Promise<T>): Promise<T>;
  _runExclusiveTransaction<T>(fn: () => Promise<T>): Promise<T>;
}

/** `pg` as drizzle uses it (query, transaction), its statements with parameters prepared once. */
export function withPreparedStatements(pg: PGlite): PGlite {
  const statements = new Map<string, Statement>();
  /** Statements dropped from the map, closed on the next crossing. */
  let toClose: string[] = [];
  let counter = 0;
  const locks = pg as unknown as Locks;

  const closing = (): Uint8Array[] => {
    const parts = toClose.map((name) => protocol.serialize.close({ type: 'S', name }));
    toClose = [];
    return parts;
  };

  /** A text asked with other parameter types is another statement. */
  const keyOf = (text: string, options: QueryOptions | undefined): string =>
    options?.paramTypes?.length ? `${options.paramTypes.join(',')}\0${text}` : text;

  const prepare = async (text: string, options: QueryOptions | undefined): Promise<Statement> => {
    const name = `hb_${++counter}`;
    const { messages } = await pg.execProtocol(
      Buffer.concat([
        ...closing(),
        protocol.serialize.parse({ name, text, types: options?.paramTypes ?? [] }),
        protocol.serialize.describe({ type: 'S', name }),
        protocol.serialize.sync(),
      ]),
      { syncToFs: false },
    );
    const described = messages.find((m) => m.name === 'parameterDescription') as
      | { dataTypeIDs: number[] }
      | undefined;
    const statement = { name, paramTypes: described?.dataTypeIDs ?? [] };
    statements.set(keyOf(text, options), statement);
    if (statements.size > MAX_STATEMENTS) {
      const [oldest] = statements;
      if (oldest) {
        statements.delete(oldest[0]);
        toClose.push(oldest[1].name);
      }
    }
    return statement;
  };

  const run = async <T>(
    text: string,
    params: unknown[],
    options: QueryOptions | undefined,
  ): Promise<Results<T>> => {
    const key = keyOf(text, options);
    let statement = statements.get(key);
    if (statement) {
      // most recently used last: the first entry is the one to drop
      statements.delete(key);
      statements.set(key, statement);
    } else {
      statement = await prepare(text, options);
    }
    const values = params.map((value, i) => {
      if (value === null || value === undefined) return null;
      const type = statement.paramTypes[i] as number;
      // sent as it is, in binary: as hex text a job's 64 KB latent cost 2 ms to write and read
      if (type === BYTEA_OID && value instanceof Uint8Array) return value;
      const serialize = options?.serializers?.[type] ?? pg.serializers[type];
      return serialize ? serialize(value) : String(value);
    });
    const { messages } = await pg.execProtocol(
      Buffer.concat([
        ...closing(),
        protocol.serialize.bind({ statement: statement.name, values }),
        protocol.serialize.describe({ type: 'P' }),
        protocol.serialize.execute({}),
        protocol.serialize.sync(),
      ]),
      { syncToFs: false, onNotice: options?.onNotice },
    );
    return resultOf<T>(
      messages,
      options?.rowMode ?? 'object',
      (type) => options?.parsers?.[type] ?? pg.parsers[type],
    );
  };

  /**
   * A statement with parameters through its prepared name. A table it reads that changed shape
   * since ("cached plan must not change result type") prepares it again, and outside a
   * transaction runs it again: that error comes before the statement has done anything.
   */
  const prepared = async <T>(
    text: string,
    params: unknown[],
    options: QueryOptions | undefined,
    again: boolean,
  ): Promise<Results<T>> => {
    try {
      return await run<T>(text, params, options);
    } catch (err) {
      const key = keyOf(text, options);
      const statement = statements.get(key);
      // 26000: the name is gone from the server (DEALLOCATE ALL, DISCARD ALL): prepare it again
      const code = (err as { code?: string }).code;
      if ((code !== '0A000' && code !== '26000') || !statement) throw err;
      statements.delete(key);
      toClose.push(statement.name);
      if (!again) throw err;
      return run<T>(text, params, options);
    }
  };

  const query = <T>(text: string, params?: unknown[], options?: QueryOptions): Promise<Results<T>> =>
    params && params.length > 0
      ? locks._runExclusiveTransaction(() =>
          locks._runExclusiveQuery(async () => {
            // as PGlite's own query(): nothing runs on a database closing or closed (its
            // teardown releases the locks before it ends the backend)
            await locks._checkReady();
            const result = await prepared<T>(text, params, options, true);
            await pg.syncToFs();
            return result;
          }),
        )
      : pg.query<T>(text, params, options);

  const transaction = <T>(fn: (tx: Transaction) => Promise<T>): Promise<T> =>
    pg.transaction((tx) => {
      const inner: Query = (text, params, options) => {
        // as PGlite's own: a transaction's object used after it ended must not run outside it
        if (tx.closed) return Promise.reject(new Error('Transaction is closed'));
        return params && params.length > 0
          ? locks._runExclusiveQuery(() => prepared(text, params, options, false))
          : tx.query(text, params, options);
      };
      return fn(overriding(tx, { query: inner }));
    });

  return overriding(pg, { query, transaction });
}

/**
 * The rows of one statement's messages, as PGlite's `parseResults` gives them; that one merges
 * every type parser of the database into a new object per call (a quarter of a millisecond).
 */
function resultOf<T>(
  messages: BackendMessage[],
  rowMode: 'array' | 'object',
  parserOf: (type: number) => Parser | undefined,
): Results<T> {
  let fields: { name: string; dataTypeID: number }[] = [];
  let parsers: (Parser | undefined)[] = [];
  const rows: unknown[] = [];
  let affectedRows = 0;
  for (const m of messages) {
    if (m.name === 'rowDescription') {
      fields = (m as messages.RowDescriptionMessage).fields.map((f) => ({
        name: f.name,
        dataTypeID: f.dataTypeID,
      }));
      parsers = fields.map((f) => parserOf(f.dataTypeID));
    } else if (m.name === 'dataRow') {
      const values = (m as messages.DataRowMessage).fields.map((v, i) => {
        const parser = parsers[i];
        return v === null || !parser ? v : parser(v, fields[i]?.dataTypeID as number);
      });
      rows.push(rowMode === 'array' ? values : Object.fromEntries(fields.map((f, i) => [f.name, values[i]])));
    } else if (m.name === 'commandComplete') {
      const words = (m as messages.CommandCompleteMessage).text.split(' ');
      if (['INSERT', 'UPDATE', 'DELETE', 'COPY', 'MERGE'].includes(words[0] as string))
        affectedRows += Number.parseInt(words[words.length - 1] as string, 10);
    }
  }
  return { rows, fields, affectedRows } as Results<T>;
}

/** `target` with some members replaced; its own methods still run on it (PGlite's private state). */
function overriding<T extends object>(target: T, members: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === 'string' && prop in members) return members[prop];
      const value = Reflect.get(t, prop, t);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}
