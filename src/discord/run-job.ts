/**
 * Defer, delegate, render for every command or button that starts a job: submit it (the job
 * service reserves the quota and queues it), answer within Discord's 3 s — ephemerally if it was
 * refused, so nobody else sees it — then follow it to the end.
 */
import type {
  ButtonInteraction,
  ChatInputCommandInteraction,
  Client,
  ModalSubmitInteraction,
  StringSelectMenuInteraction,
} from 'discord.js';
import type { GenerationRequest } from '../diffusion/request.ts';
import { UserError } from '../user-error.ts';
import type { RequestNote } from './build-request.ts';
import type { CommandContext } from './command.ts';
import { type FollowOptions, followJob } from './follow-job.ts';
import { JobError } from './job-error.ts';
import { errorForLog } from './log-error.ts';
import { renderUserError } from './render/errors.ts';
import { initialProgress, type JobView, renderStatus } from './render/status.ts';
import { DEFAULT_UPLOAD_LIMIT } from './render/uploads.ts';
import {
  isAlreadyAcknowledged,
  type ReplyTarget,
  toEditOptions,
  tokenTarget,
  toSendOptions,
} from './reply.ts';
import { requesterOf } from './requester.ts';
import type { JobHandle, JobKind, RecoveredJob } from './services.ts';

export type StartingInteraction =
  | ChatInputCommandInteraction
  | ButtonInteraction
  | StringSelectMenuInteraction
  | ModalSubmitInteraction;

export interface JobPlan {
  kind: JobKind;
  request: GenerationRequest;
  denoises: number[];
  notes: RequestNote[];
  parentJobId?: string;
}

/** Interaction tokens live 15 minutes. */
export const TOKEN_LIFETIME_MS = 15 * 60_000;
/**
 * How long after the interaction was created the bot may still answer it with the job's reply
 * before it defers instead (Discord allows 3 s): the reads before the submission (settings, the
 * job a button names) count against it too.
 */
export const ACK_BUDGET_MS = 2_000;

type Settled = { handle: JobHandle } | { error: unknown };

export async function startJob(
  interaction: StartingInteraction,
  plan: JobPlan,
  ctx: CommandContext,
): Promise<void> {
  const requester = requesterOf(interaction);
  const expiresAt = new Date(interaction.createdTimestamp + TOKEN_LIFETIME_MS);
  const submitting: Promise<Settled> = ctx.services
    .submit({
      kind: plan.kind,
      requester,
      request: plan.request,
      denoises: plan.denoises,
      ...(plan.parentJobId ? { parentJobId: plan.parentJobId } : {}),
      interaction: { token: interaction.token, expiresAt },
    })
    .then(
      (handle) => ({ handle }),
      (error: unknown) => ({ error }),
    );
  let timer: NodeJS.Timeout | undefined;
  const budget = new Promise<undefined>((resolve) => {
    // the time already spent since Discord sent it; clocks that disagree can only shorten it
    const spent = Math.max(0, Date.now() - interaction.createdTimestamp);
    timer = setTimeout(() => resolve(undefined), Math.max(0, ACK_BUDGET_MS - spent));
  });
  const early = await Promise.race([submitting, budget]);
  clearTimeout(timer);

  let settled: Settled;
  if (early === undefined) {
    // the queue is slow to answer: hold the interaction with a public "thinking…" reply
    try {
      await interaction.deferReply();
    } catch (err) {
      if (!isAlreadyAcknowledged(err)) {
        const late = await submitting;
        if (!('handle' in late)) throw err;
        const cancelled = await cancelUnanswered(late.handle.jobId, requester.userId, err, ctx);
        throw new JobError(late.handle.jobId, err, cancelled);
      }
      // the "thinking…" reply exists (its answer was lost): discord.js is told, and it is filled in
      interaction.deferred = true;
    }
    settled = await submitting;
    if ('error' in settled) {
      if (!(settled.error instanceof UserError)) throw settled.error;
      await interaction.deleteReply();
      await interaction.followUp(toSendOptions(renderUserError(settled.error)));
      return;
    }
  } else {
    settled = early;
    if ('error' in settled) throw settled.error;
  }

  const { handle } = settled;
  const view: JobView = {
    jobId: handle.jobId,
    kind: plan.kind,
    request: plan.request,
    denoises: plan.denoises,
    cost: handle.cost,
    usage: handle.usage,
    notes: plan.notes,
  };
  // a gateway with no GPU worker online says so at once (src/jobs/worker-watch.ts)
  const noWorker = ctx.services.workers?.live() === 0;
  const first = renderStatus(view, initialProgress(handle.position, noWorker));
  let replyId: string | undefined;
  try {
    replyId = interaction.deferred
      ? (await interaction.editReply(toEditOptions(first))).id
      : (await interaction.reply({ ...toSendOptions(first), withResponse: true })).resource?.message?.id;
  } catch (err) {
    if (!isAlreadyAcknowledged(err)) {
      const cancelled = await cancelUnanswered(handle.jobId, requester.userId, err, ctx);
      throw new JobError(handle.jobId, err, cancelled);
    }
    // Discord posted the reply but its answer was lost: the member sees it, so the job is followed
    // through the token like any other (the reply's id comes with the first edit)
    interaction.replied = true;
  }
  try {
    await followTracked(ctx, {
      target: tokenTarget({
        client: interaction.client,
        applicationId: interaction.applicationId,
        token: interaction.token,
        expiresAt,
        channelId: requester.channelId,
      }),
      jobId: handle.jobId,
      position: handle.position,
      noWorker,
      events: handle,
      view,
      messageId: replyId,
      ownerId: requester.userId,
      services: ctx.services,
      log: ctx.log,
      uploadLimit: interaction.attachmentSizeLimit ?? DEFAULT_UPLOAD_LIMIT,
      editIntervalMs: ctx.editIntervalMs,
    });
  } catch (err) {
    throw err instanceof JobError ? err : new JobError(handle.jobId, err);
  }
}

/** Follows a job as one of the deliveries a stop waits for. */
function followTracked(ctx: CommandContext, o: FollowOptions): Promise<void> {
  const following = followJob(o);
  return ctx.deliveries ? ctx.deliveries.track(following) : following;
}

/**
 * The member never saw the job (Discord refused the acknowledgement or the first reply, e.g. a
 * late one: 10062 Unknown interaction; not 40060, which says it was taken): it is cancelled
 * through the job service, which refunds it, rather than run and charged with nobody told.
 * Returns whether the cancel went through.
 */
async function cancelUnanswered(
  jobId: string,
  ownerId: string,
  cause: unknown,
  ctx: CommandContext,
): Promise<boolean> {
  try {
    await ctx.services.cancel(jobId, { userId: ownerId, isAdmin: false });
    ctx.log.warn({ err: errorForLog(cause), jobId }, 'could not answer the interaction; job cancelled');
    return true;
  } catch (err) {
    ctx.log.error(
      { err: errorForLog(err), cause: errorForLog(cause), jobId },
      'could not answer the interaction, nor cancel its job',
    );
    return false;
  }
}

/**
 * The reply of a job this process did not answer first (taken over, or from the shared queue):
 * the webhook of its stored token (REST only), and its view without the usage (unknown here).
 */
export function storedReply(
  client: Client,
  applicationId: string,
  job: Pick<RecoveredJob, 'info' | 'interaction'>,
): { target: ReplyTarget; view: JobView } {
  const { info, interaction } = job;
  return {
    target: tokenTarget({
      client,
      applicationId,
      token: interaction?.token ?? '',
      expiresAt: interaction?.expiresAt ?? new Date(0),
      channelId: info.channelId,
    }),
    view: {
      jobId: info.jobId,
      kind: info.kind,
      request: info.request,
      denoises: info.denoises,
      cost: info.cost,
      usage: undefined,
      notes: [],
    },
  };
}

/**
 * A job a restart took over, or a worker took from the shared queue: its reply is edited through
 * the stored token while that is valid (REST only: the webhook needs the application id and the
 * token, no gateway), otherwise the result is posted in its channel. Errors are logged; there is
 * no member to answer.
 */
export async function followRecovered(
  client: Client,
  applicationId: string,
  job: RecoveredJob,
  ctx: CommandContext,
): Promise<void> {
  const { info } = job;
  const { target, view } = storedReply(client, applicationId, job);
  try {
    await followTracked(ctx, {
      target,
      jobId: info.jobId,
      position: 0,
      events: job.events,
      view,
      ownerId: info.userId,
      services: ctx.services,
      log: ctx.log,
      uploadLimit: DEFAULT_UPLOAD_LIMIT,
      editIntervalMs: ctx.editIntervalMs,
    });
  } catch (err) {
    ctx.log.error({ err: errorForLog(err), jobId: info.jobId }, 'could not deliver a recovered job');
  }
}
