/**
 * A server named by a setting (DATABASE_URL, REDIS_URL) cannot be reached. The message is the one
 * line an operator needs: the variable, the host and port, and the cause in a few words, never
 * the URL's user or password; the driver's error stays attached as `cause` for the log.
 */
export type ServerSetting = 'DATABASE_URL' | 'REDIS_URL';

/** How long start-up waits for a server that accepts connections but does not answer. */
export const CONNECT_TIMEOUT_S = 8;

export class UnavailableError extends Error {
  override name = 'UnavailableError';
  constructor(
    readonly setting: ServerSetting,
    readonly address: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`${setting}: cannot connect to ${address} (${reason})`, options);
  }
}

/** `host:port` of a connection URL, without credentials, path or query. */
export function addressOf(url: string, defaultPort: number): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || defaultPort}`;
  } catch {
    return 'an invalid URL';
  }
}

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  errors?: unknown;
  cause?: unknown;
}

/** The error and what it wraps (`cause`, an AggregateError's `errors`), outermost first. */
function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const visit = (e: unknown, depth: number) => {
    if (!e || typeof e !== 'object' || depth > 5) return;
    const x = e as ErrorLike;
    out.push(x);
    if (Array.isArray(x.errors)) for (const inner of x.errors) visit(inner, depth + 1);
    visit(x.cause, depth + 1);
  };
  visit(err, 0);
  return out;
}

const BY_CODE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'unknown host',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ETIMEDOUT: `timed out after ${CONNECT_TIMEOUT_S} s`,
  CONNECT_TIMEOUT: `timed out after ${CONNECT_TIMEOUT_S} s`,
  // PostgreSQL SQLSTATEs a bad DATABASE_URL produces
  '28P01': 'password authentication failed',
  '28000': 'connection not allowed by the server',
  '3D000': 'unknown database',
};

/**
 * The cause of a failed connection in a few words: from Node's socket codes, PostgreSQL's
 * SQLSTATE and Redis's error replies. Server messages are not repeated beyond a database name.
 */
export function connectFailureReason(err: unknown): string {
  for (const e of chain(err)) {
    const message = typeof e.message === 'string' ? e.message : '';
    if (e.code === '3D000') {
      const name = /database "([^"]*)"/.exec(message)?.[1];
      return name === undefined ? 'unknown database' : `unknown database "${name}"`;
    }
    if (typeof e.code === 'string' && BY_CODE[e.code]) return BY_CODE[e.code] as string;
    if (/^WRONGPASS|invalid password/i.test(message)) return 'password authentication failed';
    if (/^NOAUTH/.test(message)) return 'the server wants a password';
    if (/timed? ?out/i.test(message)) return `timed out after ${CONNECT_TIMEOUT_S} s`;
  }
  const first = chain(err)[0];
  const text = typeof first?.message === 'string' ? first.message : String(err);
  // unknown: the driver's own words, first line only (they name hosts, never passwords)
  return text.split('\n')[0]?.slice(0, 120) || 'unknown error';
}
