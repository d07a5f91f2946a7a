// Structured logging. Secrets are scrubbed twice: known fields by pino's redact paths, and any
// occurrence of a secret value anywhere in a line (a message, an error stack, a URL) on write.
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

export function scrub(line: string, forms: readonly string[]): string {
  let out = line;
  for (const f of forms) out = out.split(f).join(REDACTED);
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
      hooks: forms.length ? { streamWrite: (line) => scrub(line, forms) } : {},
    },
    options.destination ?? pino.destination(1),
  );
}
