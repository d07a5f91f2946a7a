// One progress line on stderr, rewritten in place on a terminal, one line per change otherwise.
const tty = process.stderr.isTTY;
const started = performance.now();

export function progress(message: string): void {
  const line = `[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}`;
  if (tty) process.stderr.write(`\r\x1b[K${line}`);
  else process.stderr.write(`${line}\n`);
}

export function progressDone(): void {
  if (tty) process.stderr.write('\n');
}
