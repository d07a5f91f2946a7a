/**
 * Every interaction goes through here: chat commands by name, buttons, menus and modals by their
 * custom_id to the command that owns them, admin commands checked again against the member's
 * permissions, and one place that turns errors into answers. A UserError becomes a short
 * ephemeral message; anything else is logged (with the job id when there is one) and the member
 * gets a generic message naming that id.
 */
import { type Client, Events, type Interaction, type RepliableInteraction } from 'discord.js';
import { shuttingDown, UserError } from '../user-error.ts';
import { type Command, type CommandContext, isCommand } from './command.ts';
import { type ComponentId, parseCustomId } from './custom-id.ts';
import { JobError } from './job-error.ts';
import { errorForLog } from './log-error.ts';
import { renderInternalError, renderUserError } from './render/errors.ts';
import type { ReplyPayload } from './render/payload.ts';
import { toSendOptions } from './reply.ts';
import { isAdmin } from './requester.ts';

export interface Router {
  handle(interaction: Interaction): Promise<void>;
  /**
   * The bot is shutting down: every new interaction is answered "the bot is restarting" (while
   * the client is still up) instead of being run against services that are stopping.
   */
  stopTaking(): void;
}

function indexCommands(commands: readonly Command[], ctx: CommandContext) {
  const byName = new Map<string, Command>();
  const byAction = new Map<string, Command>();
  for (const command of commands) {
    if (!isCommand(command)) throw new Error('commands/index.ts lists something that is not a Command');
    const { name } = command.data(ctx.limits);
    if (byName.has(name)) throw new Error(`two commands are named /${name}`);
    byName.set(name, command);
    for (const action of [...(command.components ?? []), ...(command.modals ?? [])]) {
      if (byAction.has(action)) throw new Error(`two commands answer the "${action}" component`);
      byAction.set(action, command);
    }
  }
  return { byName, byAction };
}

export function createRouter(commands: readonly Command[], ctx: CommandContext): Router {
  const { byName, byAction } = indexCommands(commands, ctx);

  async function dispatch(interaction: Interaction): Promise<{ jobId?: string }> {
    if (interaction.isChatInputCommand()) {
      const command = byName.get(interaction.commandName);
      if (!command)
        throw new UserError('not-found', 'This command is no longer available.', { what: 'command' });
      if (command.admin && !isAdmin(interaction)) {
        throw new UserError(
          'not-allowed',
          `You need the Manage Server permission to use /${interaction.commandName}.`,
          { action: 'admin' },
        );
      }
      await command.execute(interaction, ctx);
      return {};
    }
    if (interaction.isButton() || interaction.isStringSelectMenu() || interaction.isModalSubmit()) {
      const parsed = parseCustomId(interaction.customId);
      // any id without our prefix too: only this bot's messages send it interactions, so it is
      // crafted or from an older version, and an unanswered click reads "This interaction failed"
      if (!parsed.ok) throw new UserError('not-found', 'This button is out of date.', { what: 'button' });
      const id: ComponentId = parsed.id;
      const command = byAction.get(id.action);
      const jobId = 'jobId' in id ? id.jobId : undefined;
      try {
        if (interaction.isModalSubmit()) {
          if (!command?.onModal)
            throw new UserError('not-found', 'This form is out of date.', { what: 'button' });
          await command.onModal(interaction, id, ctx);
        } else {
          if (!command?.onComponent || !('jobId' in id))
            throw new UserError('not-found', 'This button is out of date.', { what: 'button' });
          await command.onComponent(interaction, id, ctx);
        }
      } catch (err) {
        throw jobId && !(err instanceof UserError) && !(err instanceof JobError)
          ? new JobError(jobId, err)
          : err;
      }
      return { jobId };
    }
    return {};
  }

  async function answer(interaction: RepliableInteraction, p: ReplyPayload): Promise<void> {
    const options = toSendOptions(p);
    if (!interaction.deferred && !interaction.replied) {
      await interaction.reply(options);
      return;
    }
    // a public "thinking…" that will not be filled in goes away; a component's message stays
    if (interaction.isChatInputCommand() && interaction.deferred && !interaction.replied) {
      await interaction.deleteReply();
    }
    await interaction.followUp(options);
  }

  let taking = true;
  return {
    stopTaking() {
      taking = false;
    },
    async handle(interaction) {
      try {
        if (!taking) throw shuttingDown();
        await dispatch(interaction);
      } catch (err) {
        if (!interaction.isRepliable()) return;
        let p: ReplyPayload;
        if (err instanceof UserError) {
          p = renderUserError(err);
        } else {
          const jobId = err instanceof JobError ? err.jobId : undefined;
          const nothingCharged = err instanceof JobError ? err.nothingCharged : true;
          ctx.log.error(
            {
              err: errorForLog(err),
              jobId,
              interactionId: interaction.id,
              command: interaction.isCommand() ? interaction.commandName : undefined,
              customId: 'customId' in interaction ? interaction.customId : undefined,
              userId: interaction.user.id,
              guildId: interaction.guildId,
            },
            'interaction failed',
          );
          p = renderInternalError(jobId, nothingCharged);
        }
        try {
          await answer(interaction, p);
        } catch (replyErr) {
          ctx.log.warn(
            { err: replyErr, interactionId: interaction.id },
            'could not tell the member about an error',
          );
        }
      }
    },
  };
}

/** Routes the client's interactions; returns a function that stops it. */
export function attachRouter(client: Client, router: Router): () => void {
  const listener = (interaction: Interaction) => void router.handle(interaction);
  client.on(Events.InteractionCreate, listener);
  return () => client.off(Events.InteractionCreate, listener);
}
