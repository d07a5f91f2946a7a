// A process that logs through createLogger's stdout and exits as the bot does after its last line
// ("stopped"): the log test reads what reached the pipe. With a second argument, it first logs
// `lines` lines of 200 characters at once and reports on stderr the longest its timers waited.
import { createLogger, flushLogs } from '../../src/log.ts';

const log = createLogger();
const count = Number(process.argv[2]);
const flood = Number(process.argv[3] ?? 0);
if (flood > 0) {
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 10);
  for (let i = 0; i < flood; i++) log.info({ i, pad: 'x'.repeat(200) }, 'flood');
  await new Promise((r) => setTimeout(r, Number(process.env.FLOOD_WAIT_MS ?? 3_000)));
  clearInterval(tick);
  process.stderr.write(`${JSON.stringify({ longestTimerWaitMs: Math.round(longest) })}\n`);
}
for (let i = 0; i < count; i++) log.info({ i }, 'line');
log.info('stopped');
await flushLogs(log);
process.exit(0);
