// Wiring only: settings → logger → checks → services → bot.
import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { config as loadDotenv } from 'dotenv';
import { CheckpointError } from './checkpoint/checkpoint-error.ts';
import { removeUnfinishedImports } from './checkpoint/import.ts';
import { ConfigError, loadConfig } from './config.ts';
import { secretsOf } from './config-secrets.ts';
import { startBot } from './discord/bot.ts';
import { startRestFollower } from './discord/rest-follower.ts';
import { isShardProcess, shardLogger, startShards } from './discord/shards.ts';
import { createLogger } from './log.ts';
import { missingForBot } from './preflight.ts';
import { type Services, startServices } from './services.ts';
import { onStopSignal } from './stop-signal.ts';
import { UnavailableError } from './unavailable.ts';

/** How long a stop waits for finished jobs' results to reach Discord (one edit interval and an upload). */
const DELIVERY_WAIT_MS = 8_000;
/** How long a stop waits for a connection to Discord still being made (one that never comes held it to its deadline). */
const CONNECT_WAIT_MS = 10_000;

function fail(lines: string[]): never {
  process.stderr.write(`hiresbot cannot start:\n${lines.map((l) => `  - ${l}`).join('\n')}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  const envFileFound = existsSync('.env');
  loadDotenv({ quiet: true });
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.problems);
    throw err;
  }
  const missing = missingForBot({ config, envFileFound });
  if (missing.length > 0) fail(missing);

  const log = shardLogger(createLogger({ level: config.logLevel, secrets: secretsOf(config) }), process.env);
  if (config.discord.shards !== undefined && !isShardProcess(process.env)) {
    // the sharding manager: each shard process runs this file again, as the whole bot
    const shards = await startShards(config, log, fileURLToPath(import.meta.url)).catch((err: unknown) =>
      fail([err instanceof Error ? err.message : String(err)]),
    );
    onStopSignal(log, async (signal) => {
      if (!(await shards.stop(signal))) throw new Error('a shard did not stop cleanly');
    });
    return;
  }
  // A stop asked for while the bot starts (a service manager's early SIGTERM, a Ctrl-C during a
  // minutes-long checkpoint import) is not left to kill the process mid-start: what an import was
  // writing is removed at once (the import then gives up), what the start got up is stopped; once
  // the services are up, the stop waits for the connection to Discord, then stops it all
  const stopAsked = new AbortController();
  const starting = startServices(config, log, { stop: stopAsked.signal });
  let up: Services | undefined;
  /** Resolves, once the bot is connected, with how to stop it all. */
  let connected: (stopAll: () => Promise<void>) => void = () => {};
  const whenConnected = new Promise<() => Promise<void>>((resolve) => {
    connected = resolve;
  });
  onStopSignal(log, async () => {
    stopAsked.abort();
    if (!up) {
      removeUnfinishedImports();
      await (await starting.catch(() => undefined))?.stop();
      return;
    }
    const stopAll = await Promise.race([whenConnected, delay(CONNECT_WAIT_MS, undefined, { ref: false })]);
    if (stopAll) return stopAll();
    // Discord (or a proxy) does not answer: the services stop without the bot; what they recovered
    // and could not deliver is recovered again at the next start
    log.warn('stopped before the connection to Discord was made');
    await up.stop();
  });
  // the stop ends the process from here on
  const stopped = () => new Promise<never>(() => {});
  const services = await starting.catch((err: unknown) => {
    if (stopAsked.signal.aborted) return stopped();
    // a server named by a setting cannot be reached, or the checkpoint it names cannot be
    // imported: a start-up problem like a bad setting
    if (err instanceof UnavailableError || err instanceof CheckpointError) fail([err.message]);
    if (err instanceof ConfigError) fail(err.problems); // a setting only the disk shows wrong (PGLITE_DIR)
    throw err;
  });
  if (stopAsked.signal.aborted) return stopped();
  up = services;
  // a worker has no gateway session: it answers the jobs it runs through Discord's REST API (and
  // takes no commands, so has none to stop)
  const bot: { stopCommands?(): void; settle(timeoutMs: number): Promise<number>; stop(): Promise<void> } =
    await (config.role === 'worker'
      ? startRestFollower(config, log, services.frontEnd)
      : startBot(config, log, { services: services.frontEnd })
    ).catch(async (err: unknown) => {
      await services.stop();
      throw err;
    });
  connected(async () => {
    // no new commands (each is answered "the bot is restarting"), then the job service: it
    // interrupts the running jobs and has their replies told that they are queued again (through
    // the client, still up) before it hands them back; the results already out of the engine are
    // delivered and recorded while the database is open (a few seconds at most); the client goes
    // last
    bot.stopCommands?.();
    await services.stop({
      beforeClose: async () => {
        const left = await bot.settle(DELIVERY_WAIT_MS);
        if (left > 0) log.warn({ jobs: left }, 'stopped before every finished job was delivered');
      },
    });
    await bot.stop();
  });
}

main().catch((err: unknown) => {
  // Last resort: one line, no stack, and never a secret (messages from our own code carry none).
  process.stderr.write(`hiresbot stopped: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
