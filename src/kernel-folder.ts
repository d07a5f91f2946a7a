/**
 * /proc and /sys are the kernel's own file systems: no folder can be made there, and Node's
 * recursive mkdir under /proc never returns (it retries the ENOENT for ever, at full CPU). A folder
 * setting that leads there, also through a link (/dev/fd is /proc/self/fd), is refused first.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';

const KERNEL_ROOTS = ['/proc', '/sys'];

/** `dir` with its deepest existing ancestor's links resolved (the rest does not exist yet). */
function realPathOf(dir: string): string {
  const missing: string[] = [];
  // neither path.resolve nor the JS realpath: both drop `a/..` as text, where the kernel (and so
  // mkdir) takes `..` after following the link `a` (/dev/fd/.. is /proc/self)
  const absolute = path.isAbsolute(dir) ? dir : `${process.cwd()}/${dir}`;
  for (let at = absolute; ; at = path.dirname(at)) {
    try {
      return path.join(realpathSync.native(at), ...missing);
    } catch {
      if (at === path.dirname(at)) return path.resolve(dir);
      missing.unshift(path.basename(at));
    }
  }
}

/** The one line refusing `dir` (named by `setting`) when it lies under /proc or /sys, else undefined. */
export function kernelFolderRefusal(dir: string, setting: string): string | undefined {
  const real = realPathOf(dir);
  const root = KERNEL_ROOTS.find((r) => real === r || real.startsWith(`${r}/`));
  if (root === undefined) return undefined;
  return `${setting} ${dir} is under ${root}, the kernel's own file system, where no folder can be made: choose another folder`;
}
