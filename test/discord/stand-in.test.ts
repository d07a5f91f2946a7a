// The local Discord itself: the real discord.js client logs in to it, receives an interaction,
// answers it, and meets the rules real Discord enforces.
import {
  AttachmentBuilder,
  type ChatInputCommandInteraction,
  Client,
  DiscordAPIError,
  Events,
  GatewayIntentBits,
  type Interaction,
  Routes,
} from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ACK_WINDOW_MS, DiscordStandIn, TOKEN_LIFETIME_MS } from '../support/discord-stand-in.ts';

const GUILD = '100000000000000001';
const CHANNEL = '100000000000000002';
const ALICE = '100000000000000003';

let standIn: DiscordStandIn | undefined;
let client: Client | undefined;

afterEach(async () => {
  await client?.destroy();
  await standIn?.stop();
  client = undefined;
  standIn = undefined;
});

async function connect(options: { token?: string } = {}) {
  standIn = await DiscordStandIn.start({
    guilds: [{ id: GUILD, name: 'Test', channels: [{ id: CHANNEL, name: 'art' }], members: [{ id: ALICE }] }],
  });
  client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: standIn.apiUrl } });
  const ready = new Promise<void>((resolve) => client?.once(Events.ClientReady, () => resolve()));
  await client.login(options.token ?? standIn.token);
  await ready;
  return { standIn, client };
}

/** The next chat-input interaction the client receives. */
function nextCommand(c: Client): Promise<ChatInputCommandInteraction> {
  return new Promise((resolve) => {
    const listener = (i: Interaction) => {
      if (!i.isChatInputCommand()) return;
      c.off(Events.InteractionCreate, listener);
      resolve(i);
    };
    c.on(Events.InteractionCreate, listener);
  });
}

describe('the Discord stand-in', () => {
  it('lets discord.js log in and see the configured guild, channel and member', async () => {
    const { client } = await connect();
    const guild = client.guilds.cache.get(GUILD);
    expect(guild?.name).toBe('Test');
    expect(guild?.channels.cache.get(CHANNEL)?.name).toBe('art');
    expect(guild?.members.cache.has(ALICE)).toBe(true);
  });

  it('refuses a bad token the way Discord does (login fails with TokenInvalid)', async () => {
    standIn = await DiscordStandIn.start();
    client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: standIn.apiUrl } });
    await expect(client.login('not-the-token')).rejects.toMatchObject({ code: 'TokenInvalid' });
  });

  it('delivers a slash command that the bot defers and then edits with an attachment', async () => {
    const { standIn, client } = await connect();
    const received = nextCommand(client);
    const sent = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'a lighthouse', steps: 20, cfg: 7.5 });
    const interaction = await received;
    expect(interaction.commandName).toBe('imagine');
    expect(interaction.options.getString('prompt')).toBe('a lighthouse');
    expect(interaction.options.getInteger('steps')).toBe(20);
    expect(interaction.options.getNumber('cfg')).toBe(7.5);
    expect(interaction.user.id).toBe(ALICE);
    expect(interaction.channelId).toBe(CHANNEL);
    expect(interaction.guildId).toBe(GUILD);

    await interaction.deferReply();
    expect(standIn.interaction(sent).ack?.type).toBe(5);
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    await interaction.editReply({
      content: 'done',
      files: [new AttachmentBuilder(png, { name: 'base.png' })],
      allowedMentions: { parse: [] },
    });

    const reply = standIn.original(sent);
    expect(reply?.content).toBe('done');
    expect(reply?.attachments.map((a) => a.filename)).toEqual(['base.png']);
    expect(standIn.attachmentBytes(reply?.attachments[0] as { id: string })).toEqual(png);
    const edits = standIn.requests({
      route: 'PATCH /webhooks/:app/:token/messages/:message',
      token: sent.token,
    });
    expect(edits).toHaveLength(1);
    expect(edits[0]?.body).toMatchObject({ allowed_mentions: { parse: [] } });
    expect(edits[0]?.files).toEqual([{ index: '0', filename: 'base.png', size: png.length }]);
  });

  it('keeps attachments an edit lists and drops the rest', async () => {
    const { standIn, client } = await connect();
    const received = nextCommand(client);
    const sent = standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'x' });
    const interaction = await received;
    await interaction.deferReply();
    await interaction.editReply({
      files: [new AttachmentBuilder(Buffer.from('preview'), { name: 'p.png' })],
    });
    await interaction.editReply({
      files: [
        new AttachmentBuilder(Buffer.from('a'), { name: 'base.png' }),
        new AttachmentBuilder(Buffer.from('b'), { name: 'hires.png' }),
      ],
      attachments: [],
    });
    expect(standIn.original(sent)?.attachments.map((a) => a.filename)).toEqual(['base.png', 'hires.png']);
  });

  it('answers an acknowledgement after 3 s with 10062 Unknown interaction', async () => {
    const { standIn, client } = await connect();
    const received = nextCommand(client);
    standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'slow' });
    const interaction = await received;
    standIn.advance(ACK_WINDOW_MS + 1);
    const err = await interaction.deferReply().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscordAPIError);
    expect((err as DiscordAPIError).code).toBe(10062);
  });

  it('answers a second acknowledgement with 40060', async () => {
    const { standIn, client } = await connect();
    const received = nextCommand(client);
    standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'twice' });
    const interaction = await received;
    const route = Routes.interactionCallback(interaction.id, interaction.token);
    await client.rest.post(route, { body: { type: 5 }, auth: false });
    const err = await client.rest.post(route, { body: { type: 5 }, auth: false }).catch((e: unknown) => e);
    expect((err as DiscordAPIError).code).toBe(40060);
  });

  it('expires the interaction token after 15 minutes (50027), while the bot may still post in the channel', async () => {
    const { standIn, client } = await connect();
    const received = nextCommand(client);
    standIn.slash(GUILD, ALICE, 'imagine', { prompt: 'late' });
    const interaction = await received;
    await interaction.deferReply();
    standIn.advance(TOKEN_LIFETIME_MS + 1);
    const err = await interaction.editReply('too late').catch((e: unknown) => e);
    expect((err as DiscordAPIError).code).toBe(50027);
    const channel = client.channels.cache.get(CHANNEL);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    const posted = await channel.send({ content: 'here it is', allowedMentions: { parse: [] } });
    expect(standIn.message(posted.id)?.content).toBe('here it is');
  });

  it('sends 429s on request and discord.js retries after retry-after', async () => {
    const { standIn, client } = await connect();
    standIn.rest.rateLimit('POST /channels/:channel/messages', 1, 0.05);
    const channel = client.channels.cache.get(CHANNEL);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    await channel.send('hello');
    const statuses = standIn.requests({ route: 'POST /channels/:channel/messages' }).map((r) => r.status);
    expect(statuses).toEqual([429, 200]);
  });

  it('answers unknown routes with 404 JSON', async () => {
    const { standIn } = await connect();
    const res = await fetch(`${standIn.apiUrl}/v10/guilds/${GUILD}/bans`, {
      headers: { authorization: `Bot ${standIn.token}` },
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 0 });
  });

  it('delivers button clicks and select choices with the message they sit on', async () => {
    const { standIn, client } = await connect();
    const channel = client.channels.cache.get(CHANNEL);
    if (!channel?.isSendable()) throw new Error('channel not sendable');
    const posted = await channel.send({
      content: 'pick',
      components: [{ type: 1, components: [{ type: 2, style: 1, label: 'Go', custom_id: 'go:1' }] }],
    });
    const stored = standIn.message(posted.id);
    if (!stored) throw new Error('message not stored');
    const clicked = new Promise<Interaction>((resolve) => client.once(Events.InteractionCreate, resolve));
    const click = standIn.click(stored, 'go:1', ALICE);
    const interaction = await clicked;
    if (!interaction.isButton()) throw new Error('expected a button');
    expect(interaction.customId).toBe('go:1');
    expect(interaction.message.id).toBe(posted.id);
    await interaction.update({ content: 'went', components: [] });
    expect(standIn.original(click)?.id).toBe(posted.id);
    expect(standIn.message(posted.id)?.content).toBe('went');

    const selected = new Promise<Interaction>((resolve) => client.once(Events.InteractionCreate, resolve));
    standIn.select(stored, 'menu:1', ['0.3'], ALICE);
    const menu = await selected;
    if (!menu.isStringSelectMenu()) throw new Error('expected a select menu');
    expect(menu.values).toEqual(['0.3']);
  });

  it('delivers a modal submission with its text fields', async () => {
    const { standIn, client } = await connect();
    const submitted = new Promise<Interaction>((resolve) => client.once(Events.InteractionCreate, resolve));
    standIn.submitModal(GUILD, ALICE, 'paste', { parameters: 'line one\nline two' });
    const modal = await submitted;
    if (!modal.isModalSubmit()) throw new Error('expected a modal submission');
    expect(modal.fields.getTextInputValue('parameters')).toBe('line one\nline two');
  });
});
