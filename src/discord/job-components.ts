/**
 * The buttons and the menu under a job's reply. Each parses its custom_id, loads the job from the
 * services (the database: buttons work after a restart), checks who may press it, then runs.
 */
import { AttachmentBuilder, MessageFlags } from 'discord.js';
import { formatInfotext } from '../diffusion/infotext.ts';
import { RequestError, resolveSeed, validateRequest } from '../diffusion/request.ts';
import { UserError } from '../user-error.ts';
import { badOption, findBlockedWord, SOFT_DENOISE_BELOW } from './build-request.ts';
import type { CommandContext, ComponentInteraction } from './command.ts';
import type { JobAction } from './custom-id.ts';
import { MAX_CONTENT } from './render/payload.ts';
import { renderParameters } from './render/result.ts';
import { toSendOptions } from './reply.ts';
import { requesterOf } from './requester.ts';
import { startJob } from './run-job.ts';
import type { JobInfo } from './services.ts';

async function loadJob(jobId: string, guildId: string, ctx: CommandContext): Promise<JobInfo> {
  const job = await ctx.services.job(jobId);
  // a job from another server is "not found" here: ids must not leak across servers
  if (!job || job.guildId !== guildId)
    throw new UserError('not-found', 'That image is no longer available.', { what: 'image' });
  return job;
}

/** A stored request checked again against the server's settings as they are now. */
async function recheck(job: JobInfo, guildId: string, ctx: CommandContext, denoise?: number) {
  const settings = await ctx.services.guildSettings(guildId);
  try {
    const request = validateRequest(
      { ...job.request, ...(denoise !== undefined ? { denoise } : {}) },
      settings.limits,
    );
    const blocked = findBlockedWord(request.prompt, settings.blockedWords);
    if (blocked) {
      throw new UserError(
        'bad-option',
        `That prompt contains “${blocked}”, which this server no longer allows.`,
        {
          option: 'prompt',
        },
      );
    }
    return request;
  } catch (err) {
    if (err instanceof RequestError)
      throw badOption(err.option, `${err.message} (this server's limits changed)`);
    throw err;
  }
}

export const JOB_COMPONENTS: readonly JobAction[] = ['reroll', 'upscale', 'params', 'delete', 'cancel'];

export async function runJobComponent(
  interaction: ComponentInteraction,
  id: { action: JobAction; jobId: string },
  ctx: CommandContext,
): Promise<void> {
  const requester = requesterOf(interaction);
  const job = await loadJob(id.jobId, requester.guildId, ctx);
  switch (id.action) {
    case 'reroll': {
      // same settings, a new seed, charged to whoever pressed it, as a new reply
      const request = await recheck(job, requester.guildId, ctx);
      await startJob(
        interaction,
        {
          kind: 'imagine',
          request: { ...request, seed: resolveSeed(-1) },
          denoises: job.denoises,
          notes: [],
        },
        ctx,
      );
      return;
    }
    case 'upscale': {
      if (!interaction.isStringSelectMenu())
        throw new UserError('bad-option', 'Pick a denoise value from the menu.', { option: 'denoise' });
      const denoise = Number(interaction.values[0]);
      if (!(denoise > 0 && denoise <= 1)) {
        throw new UserError(
          'bad-option',
          `denoise must be greater than 0 and at most 1 (got ${interaction.values[0]})`,
          { option: 'denoise' },
        );
      }
      // a re-upscaled image starts again from the base latent its own parent kept
      const parentJobId = job.kind === 'upscale' ? job.parentJobId : job.jobId;
      if (!parentJobId)
        throw new UserError('not-found', 'That image is no longer available to upscale.', { what: 'image' });
      const request = await recheck(job, requester.guildId, ctx, denoise);
      await startJob(
        interaction,
        {
          kind: 'upscale',
          request,
          denoises: [denoise],
          parentJobId,
          notes: denoise < SOFT_DENOISE_BELOW ? [{ kind: 'soft-denoise', denoise }] : [],
        },
        ctx,
      );
      return;
    }
    case 'params': {
      const model = ctx.services.model();
      const texts = [
        ...(job.kind === 'imagine'
          ? [{ label: 'Base image', infotext: formatInfotext(job.request, model, false) }]
          : []),
        ...job.denoises.map((d) => ({
          label: `Upscaled (denoise ${d})`,
          infotext: formatInfotext({ ...job.request, denoise: d }, model, true),
        })),
      ];
      const reply = renderParameters(texts);
      if (reply.content.length < MAX_CONTENT) {
        await interaction.reply(toSendOptions(reply));
        return;
      }
      // too long for a message: the same text as a file to download
      await interaction.reply({
        content: 'The parameters are too long for a message; here they are as a file.',
        files: [
          new AttachmentBuilder(Buffer.from(texts.map((t) => `${t.label}\n${t.infotext}`).join('\n\n')), {
            name: `${job.jobId}-parameters.txt`,
          }),
        ],
        allowedMentions: { parse: [] },
        flags: MessageFlags.Ephemeral,
      });
      return;
    }
    case 'delete': {
      // the button deletes the message it sits on: only a message that shows this job's result,
      // or a forged id (another job's, the presser's own) would delete someone else's message
      if (!interaction.message || !job.resultMessageIds.includes(interaction.message.id))
        throw new UserError('not-found', 'This button is out of date.', { what: 'button' });
      if (job.userId !== requester.userId && !requester.isAdmin) {
        throw new UserError('not-allowed', 'Only its owner or an admin can delete this image.', {
          action: 'delete',
          reason: 'not-owner',
        });
      }
      await interaction.deferUpdate();
      await interaction.deleteReply();
      return;
    }
    case 'cancel': {
      await ctx.services.cancel(job.jobId, { userId: requester.userId, isAdmin: requester.isAdmin });
      // the job's own reply turns into "Cancelled" when its events end
      await interaction.deferUpdate();
      return;
    }
  }
}
