/**
 * How long the process's command line may be while an engine runs. onnxruntime's environment
 * set-up (the first session of a process) recurses once per byte of /proc/self/cmdline, about
 * 270 bytes of stack each (onnxruntime-node 1.30, Linux x64): in a worker thread's default 4 MB
 * stack a 15 KB command line (`--prompt "a, a, …"`) overflows it and SIGSEGV kills the whole
 * process. The engine's worker gets WORKER_STACK_MB, twice what MAX_COMMAND_LINE_BYTES needs.
 */
import { readFileSync } from 'node:fs';

export const MAX_COMMAND_LINE_BYTES = 32 * 1024;
export const WORKER_STACK_MB = 16;

/** The bytes of /proc/self/cmdline, or the same count rebuilt from argv where there is no /proc. */
export function commandLineBytes(): number {
  try {
    return readFileSync('/proc/self/cmdline').length;
  } catch {
    const args = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
    return args.reduce((n, arg) => n + Buffer.byteLength(arg) + 1, 0);
  }
}
