/**
 * Errors as the front end logs them. A discord.js REST error carries the request URL, which for
 * interaction and webhook routes holds the interaction token, and the request body, which holds
 * whole images; the log gets the status, code, method and route with the token cut out.
 */
import { DiscordAPIError, HTTPError, RateLimitError } from 'discord.js';

const TOKEN_IN_ROUTE = /\/(webhooks|interactions)\/(\d+)\/[^/?]+/g;

export function redactRoute(url: string): string {
  return url.replace(TOKEN_IN_ROUTE, '/$1/$2/[token]');
}

export function errorForLog(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error) || depth > 5) return err;
  const isRest = err instanceof DiscordAPIError || err instanceof HTTPError || err instanceof RateLimitError;
  const copy = new Error(isRest ? redactRoute(err.message) : err.message);
  copy.name = err.name;
  copy.stack = err.stack ? redactRoute(err.stack) : undefined;
  const extra = copy as Error & Record<string, unknown>;
  if (err instanceof DiscordAPIError) Object.assign(extra, { code: err.code, status: err.status });
  if (err instanceof HTTPError) Object.assign(extra, { status: err.status });
  if (isRest)
    Object.assign(extra, {
      method: (err as { method?: string }).method,
      url: redactRoute(String((err as { url?: string }).url ?? '')),
    });
  else {
    for (const [k, v] of Object.entries(err)) if (!(k in extra)) extra[k] = v;
  }
  if (err.cause !== undefined) copy.cause = errorForLog(err.cause, depth + 1);
  return copy;
}
