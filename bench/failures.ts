// A part of a bench run that fails is written down with the first line of its error, and the rest
// of the run goes on: a failure late in a long run (a lost GPU device, a profile that cannot be
// read) must not lose what was measured before it.
import { progress } from './progress.ts';
import type { Row } from './table.ts';

/** Runs `run`; a failure goes into `into.failed[name]` instead of up the stack. */
export async function orWriteDown(
  into: { failed?: Record<string, string> },
  name: string,
  run: () => Promise<void>,
): Promise<void> {
  try {
    await run();
  } catch (err) {
    const why = String((err as Error)?.message ?? err).split('\n')[0] as string;
    into.failed = { ...into.failed, [name]: why };
    progress(`${name} failed: ${why}`);
  }
}

/** The printed section of what failed, if anything did. */
export function failedSections(
  failed: Record<string, string> | undefined,
  title: string,
): { title: string; rows: Row[] }[] {
  const rows = Object.entries(failed ?? {}).map(([name, why]) => ({ name, value: why }));
  return rows.length ? [{ title, rows }] : [];
}
