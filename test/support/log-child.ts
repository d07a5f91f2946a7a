// A process that logs through createLogger's stdout and exits at once, as the bot does after its
// last line ("stopped"): the log test reads what reached the pipe.
import { createLogger } from '../../src/log.ts';

const log = createLogger();
const count = Number(process.argv[2]);
for (let i = 0; i < count; i++) log.info({ i }, 'line');
log.info('stopped');
process.exit(0);
