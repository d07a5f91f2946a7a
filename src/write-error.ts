/**
 * One line for a write that the file system refused (a full disk, a quota, a read-only mount, no
 * permission, the file size limit): which folder, which file, and what to do, instead of Node's
 * raw `ENOSPC: no space left on device, write`, which names neither. `setting` is the option or
 * variable that chose the folder (--out, MODEL_CACHE_DIR).
 */
import path from 'node:path';

const SPACE = 'free some space or choose another';

const LINES: Record<string, (dir: string, file: string, setting: string) => string> = {
  ENOSPC: (dir, file, setting) => `no space left on ${dir} while writing ${file}: ${SPACE} ${setting}`,
  EDQUOT: (dir, file, setting) => `disk quota exceeded on ${dir} while writing ${file}: ${SPACE} ${setting}`,
  EROFS: (dir, file, setting) => `${dir} is read-only (writing ${file}): choose another ${setting}`,
  EACCES: (dir, file, setting) => `no permission to write ${file} in ${dir}: choose another ${setting}`,
  EPERM: (dir, file, setting) => `no permission to write ${file} in ${dir}: choose another ${setting}`,
  EFBIG: (_dir, file) => `${file} is over the file size limit (ulimit -f): raise the limit`,
};

/**
 * The line for `err` if it is one of those refusals, else undefined (the caller's own message
 * stands). `dir`: the folder to name, one that is there (by default the file's).
 */
export function writeRefusal(
  err: unknown,
  file: string,
  setting: string,
  dir = path.dirname(file),
): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const line = code !== undefined && Object.hasOwn(LINES, code) ? LINES[code] : undefined;
  return line?.(dir, file, setting);
}
