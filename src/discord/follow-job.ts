/**
 * Follows one job from its first reply to its last edit: queue position and progress through the
 * edit throttle, then the images (or what ended the job). Only this job's events are read, from
 * its handle; after the 15-minute token, or when the reply cannot be edited (deleted, refused), the
 * result goes to the channel as a new message.
 */
import { compareSheet } from '../diffusion/compare-sheet.ts';
import type { FrontEndLog } from './command.ts';
import { EditThrottle } from './edit-throttle.ts';
import { JobError } from './job-error.ts';
import { errorForLog } from './log-error.ts';
import type { ReplyPayload } from './render/payload.ts';
import { forChannel, type ResultView, renderCancelled, renderFailed, renderResult } from './render/result.ts';
import { initialProgress, type JobView, reduceProgress, renderStatus } from './render/status.ts';
import { fitUploads } from './render/uploads.ts';
import { isExpiredToken, type ReplyTarget } from './reply.ts';
import type { FinalJobEvent, FrontEndServices, JobEvents } from './services.ts';

export interface FollowOptions {
  target: ReplyTarget;
  jobId: string;
  /** Where the job stood when its reply was written. */
  position: number;
  /** Whether that reply said no GPU worker is online. */
  noWorker?: boolean;
  events: JobEvents;
  view: JobView;
  /** The reply's message id, when known (the channel fallback answers it). */
  messageId?: string;
  ownerId: string;
  services: FrontEndServices;
  log: FrontEndLog;
  uploadLimit: number;
  /** Minimum time between two edits of the reply. */
  editIntervalMs?: number;
}

/** The token is (nearly) 15 minutes old: edits must stop; the result goes to the channel. */
class TokenTooOld extends Error {}

const isFinal = (e: { type: string }): e is FinalJobEvent =>
  e.type === 'done' || e.type === 'failed' || e.type === 'cancelled' || e.type === 'interrupted';

export async function finalPayload(
  end: Exclude<FinalJobEvent, { type: 'interrupted' }>,
  view: JobView,
  services: FrontEndServices,
  uploadLimit: number,
): Promise<ReplyPayload> {
  if (end.type === 'failed') return renderFailed(view, end);
  if (end.type === 'cancelled') return renderCancelled(view);
  const result: ResultView = { ...view, upscaleCost: services.cost('upscale', view.request, 1) };
  if (view.denoises.length > 1) {
    result.sheet = await compareSheet(
      end.images.upscaled.map((u) => ({ png: u.png, label: `denoise ${u.denoise}` })),
    );
  }
  const rendered = renderResult(result, end);
  const fitted = await fitUploads(rendered.files, uploadLimit);
  if (fitted.notes.length === 0) return rendered;
  return { ...renderResult(result, end, fitted.notes), files: fitted.files };
}

export async function followJob(o: FollowOptions): Promise<void> {
  const { target, jobId, view, log } = o;
  let messageId = o.messageId;
  /** The final state is being sent: the job's settle proved this process owned it. */
  let finishing = false;
  const throttle = new EditThrottle<ReplyPayload>(
    async (p) => {
      if (target.expired()) throw new TokenTooOld();
      // a resumed process must not paint over the reply of the one that took its job over
      if (!finishing && !o.services.mayReport(jobId)) return;
      messageId = await target.edit(p);
    },
    {
      intervalMs: o.editIntervalMs,
      // the first reply went out just now
      lastSentAt: Date.now(),
      onError: (err) => {
        if (!(err instanceof TokenTooOld)) log.warn({ err: errorForLog(err), jobId }, 'progress edit failed');
      },
    },
  );
  let state = initialProgress(o.position, o.noWorker);
  // the reply already shows the first state; an event that changes nothing visible is no edit
  let shown = renderStatus(view, state);
  const show = () => {
    const next = renderStatus(view, state);
    if (next.content === shown.content && next.files[0]?.data === shown.files[0]?.data) return;
    shown = next;
    throttle.push(next);
  };
  // on a gateway, the "no GPU worker" note comes and goes with the workers while the job waits
  const setNoWorker = (noWorker: boolean) => {
    if (state.phase !== 'queued' || state.noWorker === noWorker) return;
    state = { ...state, noWorker };
    show();
  };
  const unwatch = o.services.workers?.onChange((online) => setNoWorker(!online));
  const live = o.services.workers?.live();
  if (live !== undefined) setNoWorker(live === 0); // (it may have changed since the first reply)
  try {
    for await (const event of o.events) {
      if (isFinal(event)) break;
      state = reduceProgress(state, event);
      show();
    }
  } finally {
    unwatch?.();
  }
  const end = await o.events.result;
  if (end.type === 'interrupted') {
    // this process is stopping; the job stays unfinished and the next start answers it
    throttle.close();
    return;
  }
  try {
    const payload = await finalPayload(end, view, o.services, o.uploadLimit);
    let delivered: string | undefined;
    try {
      finishing = true;
      await throttle.final(payload);
      delivered = messageId;
    } catch (err) {
      // the reply is gone (deleted by a moderator), Discord refuses its edits, or its token has
      // expired: the result still reaches the member, as a message in the channel; unless Discord
      // applied the edit and only its answer was lost (the reply shows the result already)
      if (!(err instanceof TokenTooOld) && !isExpiredToken(err)) {
        delivered = await replyShowing(target, payload, o);
        if (delivered === undefined)
          log.warn({ err: errorForLog(err), jobId }, 'final edit failed; posting the result in the channel');
      }
    }
    if (delivered === undefined) delivered = await target.post(forChannel(payload, o.ownerId), messageId);
    if (end.type === 'done') await o.services.recordMessages(jobId, [delivered]);
  } catch (err) {
    // what the member is told depends on how the job settled: a finished job was charged
    throw new JobError(jobId, err, end.type !== 'done' && end.refunded);
  }
}

/**
 * The reply's id if it already shows this final state (its text and the same files): a final edit
 * whose answer was lost after Discord applied it. Undefined when it is gone, shows something else,
 * or cannot be read: then the result is posted.
 */
async function replyShowing(
  target: ReplyTarget,
  p: ReplyPayload,
  o: Pick<FollowOptions, 'jobId' | 'log'>,
): Promise<string | undefined> {
  try {
    const reply = await target.original();
    if (!reply || reply.content.trim() !== p.content.trim()) return undefined;
    const { attachments } = reply;
    const same =
      attachments.length === p.files.length &&
      p.files.every((f, k) => attachments[k]?.filename === f.name && attachments[k]?.size === f.data.length);
    return same ? reply.id : undefined;
  } catch (err) {
    o.log.warn({ err: errorForLog(err), jobId: o.jobId }, 'could not read the reply back');
    return undefined;
  }
}
