// `npm run deploy-commands`: register the slash commands now (npm start does the same when they
// changed). Guild-scoped with DISCORD_GUILD_ID, else global. Reads .env like the bot.
import { REST, Routes } from 'discord.js';
import { config as loadDotenv } from 'dotenv';
import { commands } from '../commands/index.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { registerCommands } from '../src/discord/register.ts';

function fail(message: string): never {
  process.stderr.write(`deploy-commands: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  loadDotenv({ quiet: true });
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.problems.join('; '));
    throw err;
  }
  const token = config.discord.token;
  if (!token) fail('DISCORD_TOKEN is not set (put it in .env)');
  const rest = new REST(config.discord.apiUrl ? { api: config.discord.apiUrl } : {}).setToken(token);
  const applicationId =
    config.discord.applicationId ?? ((await rest.get(Routes.currentApplication())) as { id: string }).id;
  const result = await registerCommands({
    rest,
    applicationId,
    guildId: config.discord.guildId,
    commands: commands.map((c) => c.data(config.limits)),
  });
  const where = result.scope === 'guild' ? `in server ${config.discord.guildId}` : 'globally';
  process.stdout.write(
    result.updated
      ? `registered ${commands.length} slash commands ${where}\n`
      : `the ${commands.length} slash commands ${where} are already up to date\n`,
  );
  process.exit(0);
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
