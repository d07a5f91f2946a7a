// The local Discord's sharding, met by two real discord.js clients in this process (one shard
// each): GET /gateway/bot recommends the count, each session sees only its shard's guilds, and a
// guild's interaction goes to the shard `(guild_id >> 22) % count` alone.
import { type ChatInputCommandInteraction, Client, Events, GatewayIntentBits } from 'discord.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { Config } from '../../src/config.ts';
import { shardCount } from '../../src/discord/shards.ts';
import { DiscordStandIn, shardOf } from '../support/discord-stand-in.ts';

// (id >> 22) % 2: the first is on shard 0, the second on shard 1
const GUILD_0 = '100000000000000001';
const GUILD_1 = '100000000004194305';
const ALICE = '100000000000000003';

let standIn: DiscordStandIn | undefined;
const clients: Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.destroy();
  await standIn?.stop();
  standIn = undefined;
});

async function shardClient(s: DiscordStandIn, id: number, count: number): Promise<Client<true>> {
  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    rest: { api: s.apiUrl },
    shards: id,
    shardCount: count,
  });
  clients.push(client);
  const ready = new Promise<Client<true>>((resolve) => client.once(Events.ClientReady, resolve));
  await client.login(s.token);
  return ready;
}

/** Every chat-input interaction a client receives, as it comes. */
function received(client: Client): ChatInputCommandInteraction[] {
  const got: ChatInputCommandInteraction[] = [];
  client.on(Events.InteractionCreate, (i) => {
    if (i.isChatInputCommand()) got.push(i);
  });
  return got;
}

describe('the Discord stand-in with two shards', () => {
  it('places guilds by Discord’s rule', () => {
    expect(shardOf(GUILD_0, 2)).toBe(0);
    expect(shardOf(GUILD_1, 2)).toBe(1);
    expect(shardOf(GUILD_1, 1)).toBe(0);
  });

  it('recommends its shard count and gives each shard its own guilds and interactions', async () => {
    const s = await DiscordStandIn.start({
      shards: 2,
      guilds: [GUILD_0, GUILD_1].map((id, n) => ({
        id,
        name: `Guild ${n}`,
        channels: [{ id: String(BigInt(id) + 1n), name: 'art' }],
        members: [{ id: ALICE }],
      })),
    });
    standIn = s;
    const res = await fetch(`${s.apiUrl}/v10/gateway/bot`, { headers: { authorization: `Bot ${s.token}` } });
    expect(await res.json()).toMatchObject({ shards: 2 });

    const [zero, one] = [await shardClient(s, 0, 2), await shardClient(s, 1, 2)];
    expect([...zero.guilds.cache.keys()]).toEqual([GUILD_0]);
    expect([...one.guilds.cache.keys()]).toEqual([GUILD_1]);
    expect(s.sessions.map((x) => x.shard)).toEqual([
      [0, 2],
      [1, 2],
    ]);

    const [got0, got1] = [received(zero), received(one)];
    const sent0 = s.slash(GUILD_0, ALICE, 'queue');
    const sent1 = s.slash(GUILD_1, ALICE, 'queue');
    await vi.waitFor(() => expect(got0.length + got1.length).toBe(2));
    expect(got0.map((i) => i.id)).toEqual([sent0.id]);
    expect(got1.map((i) => i.id)).toEqual([sent1.id]);

    await got1[0]?.reply('from shard 1');
    expect(s.answeredBy(sent1)?.shard).toEqual([1, 2]);
    expect(s.answeredBy(sent0)).toBeUndefined(); // not acknowledged yet
  });

  it('closes a session that names a shard outside its count (4010)', async () => {
    const s = await DiscordStandIn.start();
    standIn = s;
    // discord.js refuses such a shard before it connects: a raw socket identifies instead
    const ws = new WebSocket(`${s.gatewayUrl}?v=10&encoding=json`);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.once('message', () => ws.send(JSON.stringify({ op: 2, d: { token: s.token, shard: [2, 2] } })));
    expect(await closed).toBe(4010);
    expect(s.identifies).toBe(0);
  });
});

describe('DISCORD_SHARDS=auto', () => {
  it('takes the count Discord recommends, and refuses an answer that is not a usable count', async () => {
    const ask = (s: DiscordStandIn) =>
      shardCount({ shards: 'auto', apiUrl: s.apiUrl, token: s.token } as Config['discord']);
    standIn = await DiscordStandIn.start({ guilds: [], shards: 3 });
    expect(await ask(standIn)).toBe(3);
    await standIn.stop();
    standIn = await DiscordStandIn.start({ guilds: [], shards: 0 });
    await expect(ask(standIn)).rejects.toThrow(
      'DISCORD_SHARDS=auto: Discord did not say how many shards to run (it answered 0, not a whole number from 1 to 10000)',
    );
  });
});
