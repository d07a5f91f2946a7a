// Progress edits through the real bot at the default 2 s throttle: states that arrive faster are
// folded into the latest, the final edit always arrives. Counts and order, not durations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBot } from '../../src/discord/bot.ts';
import { ALICE, GUILD, startTestBot, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn } from '../support/discord-stand-in.ts';
import { ScriptedServices, testPng } from '../support/front-end-services.ts';

let standIn: DiscordStandIn;
let bot: RunningBot;
const services = new ScriptedServices();

beforeAll(async () => {
  standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD] });
  ({ bot } = await startTestBot(standIn, { services }, { DISCORD_GUILD_ID: GUILD }));
});

afterAll(async () => {
  await bot?.stop();
  await standIn?.stop();
});

describe('progress edits', () => {
  it('fold a burst of steps into one edit showing the latest, with its preview, then the final edit', async () => {
    const i = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'a busy job', seed: 5 });
    const job = await services.nextJob();
    await standIn.waitUntil(() => (standIn.original(i)?.content.includes('Queued') ? true : undefined));
    job.start();
    const preview = await testPng(64, 64);
    for (let step = 1; step <= 30; step++) {
      job.progress({ pass: 'base', step, total: 30, ...(step === 25 ? { preview } : {}) });
    }
    const edits = () =>
      standIn.requests({ route: 'PATCH /webhooks/:app/:token/messages/:message', token: i.token });
    const progress = await standIn.waitUntil(() => edits()[0], 15_000, 'the first progress edit');
    expect(progress.files.map((f) => f.filename)).toEqual(['preview.png']);
    expect(standIn.original(i)?.content).toContain('30/30');
    await job.finish();
    await standIn.waitUntil(
      () => (standIn.original(i)?.content.includes('**Done**') ? true : undefined),
      15_000,
    );
    // the reply, one progress edit for 31 states, and the final edit
    expect(edits()).toHaveLength(2);
    const history = standIn.original(i)?.edits ?? [];
    expect(history.map((e) => e.files)).toEqual([['preview.png'], ['5-base.png', '5-hires.png']]);
  });
});
