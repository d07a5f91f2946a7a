// `npm start` with DISCORD_SHARDS=auto: the real ShardingManager asks the stand-in for its
// recommended count (2) and starts two real shard processes on one PostgreSQL. Two guilds sit on
// different shards by Discord's rule; a /quota in each is answered by the shard that received
// it, and by no other. A killed shard is started again; a stop signal to the manager stops all.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type BotProcess, startBotProcess } from '../support/bot-process.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';
import { ALICE, GUILD, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type GuildSpec, type Injected, shardOf } from '../support/discord-stand-in.ts';
import { botFolder, hasContent, replyWhen } from '../support/real-bot.ts';

// (id >> 22) % 2 = 1, where TEST_GUILD's is 0
const OTHER_GUILD: GuildSpec = {
  id: '200000000004194305',
  name: 'Photo club',
  channels: [{ id: '200000000004194306', name: 'photos' }],
  members: [{ id: ALICE, username: 'alice' }],
};

let standIn: DiscordStandIn;
let database: TestDatabase;
let folder: ReturnType<typeof botFolder>;
let bot: BotProcess | undefined;

beforeAll(async () => {
  // heartbeats of 1 s: on a busy machine a late ACK at 150 ms makes discord.js reconnect mid-test
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD, OTHER_GUILD], shards: 2, heartbeatMs: 1_000 });
  database = await freshDatabase('postgres');
  folder = botFolder();
});

afterAll(async () => {
  bot?.kill();
  await standIn?.stop();
  await database?.destroy();
  folder?.remove();
});

const CALLBACK = 'POST /interactions/:id/:token/callback';

describe('npm start with DISCORD_SHARDS=auto under the ShardingManager', () => {
  it('runs two shard processes, each answering its own guild’s interactions only', async () => {
    expect([shardOf(GUILD, 2), shardOf(OTHER_GUILD.id, 2)]).toEqual([0, 1]);
    const p = startSharded('auto', (database.location as { url: string }).url);
    await p.waitForLog('all shards connected', 170_000);

    // one session per shard, each told the count and seeing only its own guild
    expect(standIn.sessions.map((s) => s.shard)).toEqual([
      [0, 2],
      [1, 2],
    ]);
    // a shard's own lines reach us through the manager, a little after the manager's
    await vi.waitFor(() => {
      const connected = p.lines().filter((l) => l.msg === 'connected to Discord');
      expect(connected.map((l) => [l.shard, l.guilds])).toEqual([
        [0, 1],
        [1, 1],
      ]);
    });
    // the commands are the application's: shard 0 registered them, shard 1 did not ask
    expect(standIn.requests({ route: 'PUT /applications/:app/commands' })).toHaveLength(1);
    expect(standIn.requests({ route: 'GET /applications/:app/commands' })).toHaveLength(1);
    expect(
      p
        .lines()
        .filter((l) => l.msg === 'slash commands registered')
        .map((l) => l.shard), // the manager's own lines have none,
    ).toEqual([0]);

    await expectEachShardAnswersItsGuild();
  }, 180_000);

  it('starts a killed shard again, which then answers its guild as before', async () => {
    const p = running();
    const pidOf1 = p.lines().find((l) => l.msg === 'connected to Discord' && l.shard === 1)?.pid;
    process.kill(pidOf1 as number, 'SIGKILL');
    await vi.waitFor(
      () => {
        const again = p.lines().filter((l) => l.msg === 'connected to Discord' && l.shard === 1);
        expect(again).toHaveLength(2);
        expect(again[1]?.pid).not.toBe(pidOf1);
      },
      { timeout: 120_000, interval: 200 },
    );
    expect(p.lines().find((l) => l.msg === 'shard process exited: starting it again')).toMatchObject({
      shard: 1,
      code: null,
    });
    await vi.waitFor(() =>
      expect(standIn.sessions.map((s) => s.shard).sort()).toEqual([
        [0, 2],
        [1, 2],
      ]),
    );
    await expectEachShardAnswersItsGuild();
  }, 180_000);

  it('stops both shards cleanly on a stop signal to the manager alone', async () => {
    const p = running();
    // only the manager's pid, as `kill <pid>` sends it: it passes the signal on to each shard
    process.kill(p.child.pid as number, 'SIGTERM');
    expect(await p.exited).toBe(0);
    bot = undefined;
    expect(
      p
        .lines()
        .filter((l) => l.msg === 'stopped')
        .map((l) => l.shard) // the manager's own lines have none
        .sort(),
    ).toEqual([0, 1, undefined]);
    expect(
      p
        .lines()
        .filter((l) => l.msg === 'shard process exited')
        .map((l) => l.code),
    ).toEqual([0, 0]);
    await vi.waitFor(() => expect(standIn.connectedClients).toBe(0));
    expect(p.output()).not.toContain(standIn.token);
  });
});

describe('npm start with DISCORD_SHARDS when a shard cannot start', () => {
  it('stops with the shard’s reason and its own line, instead of starting the shard again and again', async () => {
    const url = new URL((database.location as { url: string }).url);
    url.pathname = '/hiresbot_no_such_database';
    const p = startSharded('2', url.href);
    expect(await p.exited).toBe(1);
    bot = undefined;
    expect(p.output()).toContain('hiresbot_no_such_database');
    expect(p.output()).toContain('a shard stopped before it connected to Discord');
    expect(p.lines().filter((l) => l.msg === 'starting shard')).toHaveLength(1);
    expect(standIn.connectedClients).toBe(0);
  }, 120_000);
});

describe('npm start with DISCORD_SHARDS when the manager dies', () => {
  it('its shards stop on their own instead of answering with nobody to stop them', async () => {
    const p = startSharded('2', (database.location as { url: string }).url);
    await p.waitForLog('all shards connected', 170_000);
    // a shard's own lines reach us through the manager, a little after the manager's
    const shardPids = await vi.waitFor(() => {
      const pids = p
        .lines()
        .filter((l) => l.msg === 'connected to Discord')
        .map((l) => l.pid as number);
      expect(pids).toHaveLength(2);
      return pids;
    });
    process.kill(p.child.pid as number, 'SIGKILL');
    await p.exited;
    bot = undefined;
    await vi.waitFor(
      () => {
        expect(standIn.connectedClients).toBe(0);
        expect(shardPids.filter(isAlive)).toEqual([]);
      },
      { timeout: 60_000, interval: 250 },
    );
  }, 240_000);
});

/** `npm start` with DISCORD_SHARDS against the stand-in, as the running bot of this file. */
function startSharded(shards: string, databaseUrl: string): BotProcess {
  bot = startBotProcess(folder.dir, {
    ...folder.env,
    DISCORD_TOKEN: standIn.token,
    DISCORD_API_URL: standIn.apiUrl,
    DATABASE_URL: databaseUrl,
    DISCORD_SHARDS: shards,
    LOG_LEVEL: 'info',
  });
  return bot;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function running(): BotProcess {
  if (!bot) throw new Error('the bot is not running: the first test failed');
  return bot;
}

/** A /quota in each guild: answered once, by the shard the guild is on, the only one that saw it. */
async function expectEachShardAnswersItsGuild(): Promise<void> {
  const asked: [Injected, number][] = [
    [standIn.slash(GUILD, ALICE, 'quota'), 0],
    [standIn.slash(OTHER_GUILD.id, ALICE, 'quota'), 1],
  ];
  for (const [sent, shard] of asked) {
    const reply = await replyWhen(standIn, sent, hasContent, `shard ${shard}'s /quota answer`);
    expect(reply.content).toMatch(/units/);
    expect(standIn.interaction(sent).deliveredTo.map((d) => d.shard)).toEqual([[shard, 2]]);
    expect(standIn.answeredBy(sent)?.shard).toEqual([shard, 2]);
    // one acknowledgement, from the one process that saw the token: no second try failed
    expect(standIn.requests({ route: CALLBACK, token: sent.token }).map((r) => r.status)).toEqual([204]);
  }
}
