// Slash-command registration: one GET per start, a PUT only when the definitions changed.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REST } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from '../../commands/index.ts';
import { loadConfig } from '../../src/config.ts';
import {
  INVITE_PERMISSIONS,
  inviteUrl,
  normaliseCommand,
  registerCommands,
  sameCommands,
} from '../../src/discord/register.ts';
import { GUILD, startTestBot, TEST_GUILD } from '../support/discord-bot.ts';
import { DiscordStandIn } from '../support/discord-stand-in.ts';
import { ScriptedServices } from '../support/front-end-services.ts';

const root = path.resolve(import.meta.dirname, '../..');
const limits = loadConfig({}).limits;
const definitions = () => commands.map((c) => c.data(limits));

const GET_GLOBAL = 'GET /applications/:app/commands';
const PUT_GLOBAL = 'PUT /applications/:app/commands';
const GET_GUILD = 'GET /applications/:app/guilds/:guild/commands';
const PUT_GUILD = 'PUT /applications/:app/guilds/:guild/commands';

let standIn: DiscordStandIn | undefined;
afterEach(async () => {
  await standIn?.stop();
  standIn = undefined;
});

function rest(s: DiscordStandIn): REST {
  return new REST({ api: s.apiUrl }).setToken(s.token);
}

describe('registerCommands', () => {
  it('PUTs on the first run and only GETs when nothing changed', async () => {
    standIn = await DiscordStandIn.start();
    const o = {
      rest: rest(standIn),
      applicationId: standIn.applicationId,
      guildId: undefined,
      commands: definitions(),
    };
    expect(await registerCommands(o)).toEqual({ scope: 'global', updated: true });
    expect(await registerCommands(o)).toEqual({ scope: 'global', updated: false });
    expect(standIn.requests({ route: GET_GLOBAL })).toHaveLength(2);
    expect(standIn.requests({ route: PUT_GLOBAL })).toHaveLength(1);
    expect(
      standIn
        .commands()
        .map((c) => c.name)
        .sort(),
    ).toEqual(['compare', 'imagine', 'paste', 'queue', 'quota', 'quota-admin', 'settings']);
  });

  it('PUTs again when a definition changed (a new MAX_STEPS changes max_value)', async () => {
    standIn = await DiscordStandIn.start();
    const base = { rest: rest(standIn), applicationId: standIn.applicationId, guildId: undefined };
    await registerCommands({ ...base, commands: definitions() });
    const tighter = commands.map((c) => c.data({ ...limits, steps: 20 }));
    expect(await registerCommands({ ...base, commands: tighter })).toMatchObject({ updated: true });
    expect(standIn.requests({ route: PUT_GLOBAL })).toHaveLength(2);
  });

  it('registers in one server when DISCORD_GUILD_ID is set, leaving the global list alone', async () => {
    standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD] });
    const result = await registerCommands({
      rest: rest(standIn),
      applicationId: standIn.applicationId,
      guildId: GUILD,
      commands: definitions(),
    });
    expect(result).toEqual({ scope: 'guild', updated: true });
    expect(standIn.commands(GUILD)).toHaveLength(commands.length);
    expect(standIn.requests({ route: PUT_GLOBAL })).toHaveLength(0);
  });

  it('says how to invite the bot when it is not in the DISCORD_GUILD_ID server', async () => {
    standIn = await DiscordStandIn.start();
    const err = await registerCommands({
      rest: rest(standIn),
      applicationId: standIn.applicationId,
      guildId: '999999999999999999',
      commands: definitions(),
    }).catch((e: Error) => e);
    expect((err as Error).message).toContain(
      'the bot is not in the server DISCORD_GUILD_ID=999999999999999999',
    );
    expect((err as Error).message).toContain('https://discord.com/oauth2/authorize?');
  });

  it('admin commands carry Manage Server as default_member_permissions, the others none', () => {
    const byName = Object.fromEntries(definitions().map((d) => [d.name, d]));
    expect(byName.settings?.default_member_permissions).toBe('32');
    expect(byName['quota-admin']?.default_member_permissions).toBe('32');
    expect(byName.imagine?.default_member_permissions).toBeUndefined();
  });
});

describe('comparing definitions', () => {
  it('ignores what Discord adds and the defaults it fills in', () => {
    const local = {
      name: 'x',
      description: 'd',
      options: [{ type: 3, name: 'p', description: 'q', required: false }],
    };
    const remote = {
      ...local,
      id: '1',
      application_id: '2',
      version: '3',
      type: 1,
      default_member_permissions: null,
      dm_permission: true,
      nsfw: false,
      integration_types: [0],
      contexts: null,
      options: [{ type: 3, name: 'p', description: 'q' }],
    };
    expect(normaliseCommand(remote)).toEqual(normaliseCommand(local));
    expect(sameCommands([remote], [local])).toBe(true);
  });

  it('sees a changed choice, bound or description, but not the order of commands', () => {
    const a = {
      name: 'a',
      description: 'd',
      options: [{ type: 4, name: 'n', description: 'x', max_value: 50 }],
    };
    const b = { name: 'b', description: 'd' };
    expect(sameCommands([a, b], [b, a])).toBe(true);
    expect(sameCommands([a], [{ ...a, description: 'e' }])).toBe(false);
    expect(
      sameCommands([a], [{ ...a, options: [{ type: 4, name: 'n', description: 'x', max_value: 20 }] }]),
    ).toBe(false);
  });
});

describe('the invite link', () => {
  it('asks for bot + applications.commands and only View Channel, Send Messages, Attach Files, Read Message History', () => {
    expect(INVITE_PERMISSIONS).toBe(1024n + 2048n + 32768n + 65536n);
    const url = new URL(inviteUrl('123456789012345678'));
    expect(url.searchParams.get('scope')).toBe('bot applications.commands');
    expect(url.searchParams.get('permissions')).toBe('101376');
    expect(url.searchParams.get('client_id')).toBe('123456789012345678');
  });
});

describe('npm start and npm run deploy-commands', () => {
  it('the bot registers on its first start, not on the second, and logs the invite link while in no server', async () => {
    standIn = await DiscordStandIn.start();
    const services = new ScriptedServices();
    const first = await startTestBot(standIn, { services });
    await first.bot.stop();
    const second = await startTestBot(standIn, { services });
    await second.bot.stop();
    expect(standIn.requests({ route: GET_GLOBAL })).toHaveLength(2);
    expect(standIn.requests({ route: PUT_GLOBAL })).toHaveLength(1);
    expect(first.logs.find((l) => l.msg === 'slash commands registered')).toMatchObject({
      updated: true,
      scope: 'global',
    });
    expect(second.logs.find((l) => l.msg === 'slash commands unchanged')).toBeTruthy();
    const invite = first.logs.find((l) => typeof l.invite === 'string');
    expect(invite?.msg).toBe('the bot is in no server yet: open this link to invite it');
    expect(invite?.invite).toBe(inviteUrl(standIn.applicationId));
  });

  it('a bot that is in a server does not print the invite link; with DISCORD_GUILD_ID it registers there', async () => {
    standIn = await DiscordStandIn.start({ guilds: [TEST_GUILD] });
    const { bot, logs } = await startTestBot(
      standIn,
      { services: new ScriptedServices() },
      { DISCORD_GUILD_ID: GUILD },
    );
    await bot.stop();
    expect(logs.some((l) => 'invite' in l)).toBe(false);
    expect(standIn.requests({ route: PUT_GUILD })).toHaveLength(1);
    expect(standIn.requests({ route: GET_GUILD })).toHaveLength(1);
  });

  it('deploy-commands registers on demand and reports when nothing changed', async () => {
    standIn = await DiscordStandIn.start();
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DISCORD_TOKEN: standIn.token,
      DISCORD_API_URL: standIn.apiUrl,
    };
    const first = await deploy(env);
    const second = await deploy(env);
    expect(first).toEqual({ code: 0, stdout: `registered ${commands.length} slash commands globally\n` });
    expect(second).toEqual({
      code: 0,
      stdout: `the ${commands.length} slash commands globally are already up to date\n`,
    });
    expect(standIn.requests({ route: PUT_GLOBAL })).toHaveLength(1);
    expect(standIn.requests({ route: 'GET /applications/@me' })).toHaveLength(2);
  });
});

/** Runs the script as npm would (asynchronously: the stand-in answers from this process). */
function deploy(env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      path.join(root, 'node_modules', '.bin', 'tsx'),
      [path.join(root, 'scripts', 'deploy-commands.ts')],
      {
        cwd: path.join(root, 'test'),
        env,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve(code === 0 ? { code, stdout } : { code, stdout: stdout + stderr }));
  });
}
