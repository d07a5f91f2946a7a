// What must never be shown: the secret settings (the token, the connection strings' passwords),
// and the one-line problem messages that name a setting without showing a secret it holds.
import type { Config } from './config.ts';
import { escapeRegExp } from './escape-regexp.ts';

/** Variables whose values must never appear in an error message or a log line. */
const SECRET_VARS = new Set(['DISCORD_TOKEN', 'DATABASE_URL', 'REDIS_URL']);

/**
 * The secret values in the raw environment (before validation, which may be what failed): the
 * token and the connection strings with their passwords, as written and decoded.
 */
function secretValuesIn(env: NodeJS.ProcessEnv): string[] {
  const secrets: string[] = [];
  for (const name of SECRET_VARS) {
    const raw = env[name]?.trim();
    if (!raw) continue;
    secrets.push(raw, ...passwordOf(raw));
  }
  return secrets;
}

/** A secret this short is a word a harmless value may hold ("a", "postgres"): only all of it is hidden. */
const SHORT_SECRET = 6;

/**
 * Whether showing `value` would show a secret: it is one, holds one that is not short, or is a
 * long enough piece of one (a token pasted into the wrong variable, whole or cut). Any case: a
 * setting may have lowercased it.
 */
function revealsSecret(value: string, secrets: string[]): boolean {
  const v = value.trim().toLowerCase();
  return secrets.some((raw) => {
    const secret = raw.toLowerCase();
    return (
      v === secret ||
      (secret.length >= SHORT_SECRET && v.includes(secret)) ||
      (v.length >= 8 && secret.includes(v))
    );
  });
}

/** `text` with every place that would show a secret cut out: the secrets, and the value's revealing pieces. */
function scrubbed(text: string, value: string, secrets: string[]): string {
  // a short piece cannot be cut out of words ("a"): the value that is all of it is not shown anyway
  const pieces = [...secrets, ...value.split(/[\s,]+/).filter((p) => revealsSecret(p, secrets))].filter(
    (p) => p.length >= SHORT_SECRET,
  );
  let out = text;
  for (const piece of pieces.sort((a, b) => b.length - a.length)) {
    out = out.replace(new RegExp(escapeRegExp(piece), 'gi'), '…');
  }
  return out;
}

/**
 * One problem line for a variable: its name, what is wrong, and what it holds, unless that (or a
 * piece of the message that repeats it) would show a secret of the environment.
 */
export function problemLine(env: NodeJS.ProcessEnv, name: string, message: string): string {
  const raw = env[name];
  if (raw === undefined) return `${name} ${message}`;
  const secrets = secretValuesIn(env);
  if (SECRET_VARS.has(name)) return `${name} ${scrubbed(message, raw, [...secrets, raw.trim()])}`;
  if (revealsSecret(raw, secrets)) return `${name} ${scrubbed(message, raw, secrets)}`;
  return `${name} ${message} (got "${raw}")`;
}

/** A connection string's password, as written and decoded; none when it is not a URL or has none. */
function passwordOf(url: string): string[] {
  try {
    const password = new URL(url).password;
    if (!password) return [];
    try {
      return [password, decodeURIComponent(password)];
    } catch {
      // a password that does not decode: as written only
      return [password];
    }
  } catch {
    return [];
  }
}

/** The values to scrub from any log output: the token and connection-string passwords. */
export function secretsOf(config: Config): string[] {
  const secrets: string[] = [];
  if (config.discord.token) secrets.push(config.discord.token);
  for (const url of [config.database.url, config.redisUrl]) if (url) secrets.push(...passwordOf(url));
  return secrets;
}
