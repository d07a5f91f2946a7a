// Structured logging. Secrets are scrubbed three ways: known fields by pino's redact paths; any
// occurrence of a secret value (bot token, passwords) or of anything shaped like a Discord
// interaction token anywhere in a line (a message, an error stack, a URL) on write; and errors
// are serialized without the query parameters that drizzle and PGlite attach to them.
import { DrizzleQueryError } from 'drizzle-orm/errors';
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

const REDACTED = '[REDACTED]';

/** Field names that hold secrets wherever they appear in a logged object. */
const REDACT_PATHS = [
  'token',
  '*.token',
  'discordToken',
  '*.discordToken',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  // a job row carries its Discord interaction token (valid 15 minutes)
  'interactionToken',
  '*.interactionToken',
  '*.*.interactionToken',
];

/** A secret can reach the output raw, JSON-escaped or URL-encoded; scrub every form. */
function secretForms(secrets: readonly string[]): string[] {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (s.length < 4) continue; // too short to scrub without mangling unrelated text
    forms.add(s);
    forms.add(JSON.stringify(s).slice(1, -1));
    forms.add(encodeURIComponent(s));
  }
  // Longest first, so a form that contains another is replaced whole.
  return [...forms].sort((a, b) => b.length - a.length);
}

/**
 * Discord interaction tokens, which a job row carries and a failed query repeats in its
 * parameters. Real ones are base64 of "interaction:<id>:<secret>", so they start with
 * `aW50ZXJhY3Rpb246`; anything else shaped like a token (64 or more base64url characters mixing
 * upper case, lower case and digits) goes too. Hex hashes, ids and prose never match.
 */
const INTERACTION_TOKEN = /aW50ZXJhY3Rpb246[A-Za-z0-9+_-]*/g;
const TOKEN_SHAPED = /[A-Za-z0-9_-]{64,}/g;
const MIXED = [/[A-Z]/, /[a-z]/, /[0-9]/];

export function scrub(line: string, forms: readonly string[]): string {
  let out = line;
  for (const f of forms) out = out.split(f).join(REDACTED);
  out = out.replace(INTERACTION_TOKEN, REDACTED);
  return out.replace(TOKEN_SHAPED, (run) => (MIXED.every((re) => re.test(run)) ? REDACTED : run));
}

/** Error fields that hold query parameters or row values (PGlite, postgres.js, drizzle). */
const UNSAFE_ERROR_FIELDS = new Set(['params', 'parameters', 'args', 'queryOptions', 'detail', 'cause']);

/**
 * pino's error serializer, minus what must not reach a log: a DrizzleQueryError's message and
 * stack list every parameter (an interaction token among them), so it is logged as its cause's
 * message and code plus the SQL text; parameter and row-value fields are dropped at every level
 * of the cause chain.
 */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const cause = err.cause !== undefined && depth < 8 ? serializeError(err.cause, depth + 1) : undefined;
  const causeFields = (cause ?? {}) as { message?: unknown; code?: unknown };
  const type = err.constructor?.name || err.name;
  const out: Record<string, unknown> = { type };
  if (err instanceof DrizzleQueryError) {
    out.message = typeof causeFields.message === 'string' ? causeFields.message : 'query failed';
    if (causeFields.code !== undefined) out.code = causeFields.code;
    out.query = err.query;
  } else {
    out.message = err.message;
    for (const [k, v] of Object.entries(err)) if (!UNSAFE_ERROR_FIELDS.has(k)) out[k] = v;
  }
  // the stack's first line repeats the message: keep only the frames under our own header
  const frames = (err.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  out.stack = [`${type}: ${out.message}`, ...frames].join('\n');
  if (err instanceof AggregateError) out.errors = err.errors.map((e) => serializeError(e, depth + 1));
  if (cause !== undefined) out.cause = cause;
  return out;
}

export interface LoggerOptions {
  level?: string;
  /** Values (token, passwords) that must never appear in the output. */
  secrets?: readonly string[];
  /** Where lines go; stdout when omitted. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const forms = secretForms(options.secrets ?? []);
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      // errors under the keys our code logs them with
      serializers: { err: serializeError, error: serializeError, cause: serializeError },
      hooks: { streamWrite: (line) => scrub(line, forms) },
    },
    // asynchronous: a reader that stops reading (a stalled log shipper, a paused terminal) must
    // not stop the bot; minLength 1 (each line still goes at once) makes flush() wait for the
    // writes in flight, which flushLogs needs
    options.destination ?? pino.destination({ dest: 1, minLength: 1 }),
  );
}

/**
 * Waits until every line logged so far is written (at most `timeoutMs`: a reader that stopped
 * reading would hold it for ever). Before process.exit: an exit with a write in flight puts the
 * lines queued behind it out first, or loses it (a stopped bot's last line was not "stopped").
 */
export function flushLogs(log: Logger, timeoutMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    log.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
