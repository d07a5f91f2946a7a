// A bot process for the reaper test: takes admission slots on a Redis and holds them, reporting
// one JSON line, until it is killed. It never releases them: a SIGKILL leaves them counted.
import { createLimiters, type LimiterSettings } from '../../src/jobs/limiters.ts';

interface ChildConfig {
  settings: LimiterSettings;
  queueSlots: number;
  /** Takes one slot of each of these users. */
  users: string[];
}

const config = JSON.parse(process.argv[2] as string) as ChildConfig;
const limiters = createLimiters(config.settings);
await limiters.ping();
let queue = 0;
for (let i = 0; i < config.queueSlots; i++) if (await limiters.queue.tryAcquire('all')) queue++;
let users = 0;
for (const user of config.users) if (await limiters.users.tryAcquire(user)) users++;
process.stdout.write(`${JSON.stringify({ event: 'held', queue, users })}\n`);
// the Redis connection keeps the process alive; this keeps it alive should Redis drop it
setInterval(() => {}, 60_000);
