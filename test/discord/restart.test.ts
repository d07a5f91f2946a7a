// A restarted bot: buttons on old replies still work (everything is looked up by job id), and
// jobs the job service takes over are finished in their original reply, or in the channel once
// the reply's token has expired.
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningBot } from '../../src/discord/bot.ts';
import { ALICE, BOB, GUILD, startTestBot, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn, type StoredMessage, TOKEN_LIFETIME_MS } from '../support/discord-stand-in.ts';
import { ScriptedServices } from '../support/front-end-services.ts';

let standIn: DiscordStandIn | undefined;
let bot: RunningBot | undefined;

afterEach(async () => {
  await bot?.stop();
  await standIn?.stop();
  bot = undefined;
  standIn = undefined;
});

async function setUp() {
  const s = await DiscordStandIn.start({ guilds: [TEST_GUILD] });
  standIn = s;
  const services = new ScriptedServices();
  const first = await startTestBot(s, { services, editIntervalMs: 100 }, { DISCORD_GUILD_ID: GUILD });
  bot = first.bot;
  const restart = async () => {
    await bot?.stop();
    bot = (await startTestBot(s, { services, editIntervalMs: 100 }, { DISCORD_GUILD_ID: GUILD })).bot;
  };
  const reply = (i: { id: string }, text: string) =>
    s.waitUntil(
      () => {
        const m = s.original(i as never);
        return m?.content.includes(text) ? m : undefined;
      },
      15_000,
      `a reply containing ${text}`,
    );
  return { standIn: s, services, restart, reply };
}

describe('after a restart', () => {
  it('the buttons of an old reply still work', async () => {
    const { standIn, services, restart, reply } = await setUp();
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'a lighthouse', seed: 11 });
    const job = await services.nextJob();
    await job.finish();
    const done = await reply(i, '**Done**');
    await restart();
    expect(standIn.identifies).toBe(2);
    const click = standIn.click(done, `hb:reroll:${job.jobId}`, BOB);
    const rerolled = await services.nextJob();
    expect(rerolled.input.requester.userId).toBe(BOB);
    expect(rerolled.input.request.prompt).toBe('a lighthouse');
    await reply(click, 'Queued');
    rerolled.cancel();
  });

  it('a job taken over by the new process is finished in its original reply', async () => {
    const { standIn, services, restart, reply } = await setUp();
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'a slow one', seed: 12 });
    const job = await services.nextJob();
    await reply(i, 'Queued');
    await restart();
    const resumed = services.recover(job);
    resumed.start();
    await resumed.finish();
    const done = await reply(i, '**Done**');
    expect(done.attachments.map((a) => a.filename)).toEqual(['12-base.png', '12-hires.png']);
  });

  it('a job taken over after its token expired is posted in the channel, naming its owner', async () => {
    const { standIn, services, restart, reply } = await setUp();
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'a very slow one', seed: 13 });
    const job = await services.nextJob();
    const queued = await reply(i, 'Queued');
    const patches = () => standIn.requests({ token: i.token }).filter((r) => r.method === 'PATCH').length;
    await restart();
    const patchedBefore = patches();
    // the job service keeps the token's expiry; a restart 20 minutes later finds it spent
    job.input.interaction.expiresAt = new Date(Date.now() - 1);
    standIn.advance(TOKEN_LIFETIME_MS + 60_000);
    const resumed = services.recover(job);
    await resumed.finish();
    const post = await standIn.waitForRequest((r) => r.route === 'POST /channels/:channel/messages', 15_000);
    const posted = standIn.message(post.messageId as string) as StoredMessage;
    expect(posted.content.startsWith(`<@${ALICE}> `)).toBe(true);
    expect(posted.attachments).toHaveLength(2);
    expect((post.body as { allowed_mentions: unknown }).allowed_mentions).toMatchObject({
      parse: [],
      users: [ALICE],
    });
    // the new process never tried the spent token
    expect(patches()).toBe(patchedBefore);
    expect(queued.content).toContain('Queued');
  });
});
