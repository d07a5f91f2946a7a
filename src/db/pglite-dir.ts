/**
 * PGLITE_DIR is the embedded database's data folder, which PGlite fills with its own files (and
 * would open among anyone else's, then fail obscurely): a folder that holds something else is
 * refused in one line, before PGlite writes a byte there.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Every PostgreSQL data folder, PGlite's included, holds this file (initdb writes it first). */
const DATA_FOLDER_MARK = 'PG_VERSION';

/**
 * What an empty folder may still hold: a mount point's lost+found, a .gitkeep or other dotfile
 * (PGlite initialises beside them as it does in an empty folder).
 */
const harmless = (entry: string) => entry === 'lost+found' || entry.startsWith('.');

/** Why `dir` cannot be the data folder, or undefined: missing, empty, or a PGlite data folder. */
export function pgliteDirRefusal(dir: string): string | undefined {
  const stats = statSync(dir, { throwIfNoEntry: false });
  if (!stats) return undefined;
  if (!stats.isDirectory()) return `PGLITE_DIR ${dir} is a file, not a folder: name a new or empty folder`;
  const entries = readdirSync(dir)
    .filter((entry) => !harmless(entry))
    .sort();
  if (entries.length === 0 || entries.includes(DATA_FOLDER_MARK)) return undefined;
  const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? ', …' : '');
  return `PGLITE_DIR ${path.resolve(dir)} holds other files (${shown}), not a PGlite database: name a new or empty folder`;
}
