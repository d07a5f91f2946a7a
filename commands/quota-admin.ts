// /quota-admin: daily budgets for the server, a role or a member; reset a member's day; block.
import {
  type APIApplicationCommandBasicOption,
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ApplicationIntegrationType,
  InteractionContextType,
  PermissionFlagsBits,
} from 'discord.js';
import type { Command } from '../src/discord/command.ts';
import { ephemeral } from '../src/discord/render/payload.ts';
import { units as formatUnits } from '../src/discord/render/text.ts';
import { toSendOptions } from '../src/discord/reply.ts';
import { requesterOf } from '../src/discord/requester.ts';
import { UserError } from '../src/user-error.ts';

const { Subcommand, Number: N, User, Role } = ApplicationCommandOptionType;

const unitsOption = (required: boolean): APIApplicationCommandBasicOption => ({
  type: N,
  name: 'units',
  description: required
    ? 'Daily units per member (0 = unlimited)'
    : 'Daily units (0 = unlimited); leave out to remove the override',
  required,
  min_value: 0,
  max_value: 1_000_000,
});
const userOption: APIApplicationCommandBasicOption = {
  type: User,
  name: 'user',
  description: 'The member',
  required: true,
};
const roleOption: APIApplicationCommandBasicOption = {
  type: Role,
  name: 'role',
  description: 'The role',
  required: true,
};

const budget = (n: number) => (n === 0 ? 'unlimited' : `${formatUnits(n)} units a day`);

export default {
  admin: true,
  data: () => ({
    type: ApplicationCommandType.ChatInput,
    name: 'quota-admin',
    description: 'Daily image budgets in this server',
    contexts: [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
    default_member_permissions: String(PermissionFlagsBits.ManageGuild),
    options: [
      {
        type: Subcommand,
        name: 'set-guild',
        description: 'The budget every member gets by default',
        options: [unitsOption(true)],
      },
      {
        type: Subcommand,
        name: 'set-role',
        description: 'A role’s budget (a member gets their most generous role)',
        options: [roleOption, unitsOption(false)],
      },
      {
        type: Subcommand,
        name: 'set-user',
        description: 'One member’s budget (wins over roles)',
        options: [userOption, unitsOption(false)],
      },
      {
        type: Subcommand,
        name: 'reset',
        description: 'Give a member today’s budget back',
        options: [userOption],
      },
      {
        type: Subcommand,
        name: 'block',
        description: 'Stop a member from generating images here',
        options: [userOption],
      },
      {
        type: Subcommand,
        name: 'unblock',
        description: 'Let a blocked member generate images again',
        options: [userOption],
      },
    ],
  }),

  async execute(interaction, ctx) {
    const { guildId, userId: by } = requesterOf(interaction);
    const o = interaction.options;
    const quota = ctx.services.quota;
    const sub = o.getSubcommand();
    const units = o.getNumber('units');
    if (units !== null && !(units >= 0 && Number.isFinite(units))) {
      throw new UserError('bad-option', `units must be 0 (unlimited) or more (got ${units})`, {
        option: 'units',
      });
    }
    let done: string;
    switch (sub) {
      case 'set-guild':
        await quota.setDailyUnits(guildId, { scope: 'guild' }, units ?? 0, by);
        done = `Every member now gets ${budget(units ?? 0)} unless a role or their own setting says otherwise.`;
        break;
      case 'set-role': {
        const role = o.getRole('role', true);
        // @everyone is no role a member holds (Discord lists it on nobody): its budget would do
        // nothing, and the budget every member gets is the server's own
        if (role.id === guildId) {
          throw new UserError(
            'bad-option',
            'role cannot be @everyone: use /quota-admin set-guild to set the budget every member gets.',
            { option: 'role' },
          );
        }
        await quota.setDailyUnits(guildId, { scope: 'role', roleId: role.id }, units, by);
        done =
          units === null
            ? `<@&${role.id}> no longer has its own budget.`
            : `<@&${role.id}> now gets ${budget(units)}.`;
        break;
      }
      case 'set-user': {
        const user = o.getUser('user', true);
        await quota.setDailyUnits(guildId, { scope: 'user', userId: user.id }, units, by);
        done =
          units === null
            ? `<@${user.id}> no longer has their own budget.`
            : `<@${user.id}> now gets ${budget(units)}.`;
        break;
      }
      case 'reset': {
        const user = o.getUser('user', true);
        await quota.resetUser(guildId, user.id, by);
        done = `<@${user.id}> has today’s budget back.`;
        break;
      }
      case 'block':
      case 'unblock': {
        const user = o.getUser('user', true);
        await quota.setBlocked(guildId, user.id, sub === 'block', by);
        done =
          sub === 'block'
            ? `<@${user.id}> can no longer generate images here.`
            : `<@${user.id}> can generate images again.`;
        break;
      }
      default:
        throw new UserError('bad-option', `Unknown subcommand "${sub}".`, { option: 'subcommand' });
    }
    // mentions render as names; allowed_mentions parse [] keeps them from pinging
    await interaction.reply(toSendOptions(ephemeral(`✅ ${done}`)));
  },
} satisfies Command;
