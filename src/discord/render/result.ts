// The final edit of a job's reply: the images, a short summary and the buttons; or what ended it.
import { hiresSize } from '../../diffusion/request.ts';
import type { FinalJobEvent, Usage } from '../services.ts';
import { resultRows } from './components.ts';
import { notesBlock } from './notes.ts';
import { type FileOut, payload, type ReplyPayload } from './payload.ts';
import type { JobView } from './status.ts';
import { codeBlock, duration, promptBlock, samplerLabel, units } from './text.ts';

export type DoneEvent = Extract<FinalJobEvent, { type: 'done' }>;
export type FailedEvent = Extract<FinalJobEvent, { type: 'failed' }>;

export interface ResultView extends JobView {
  /** The price of one more hires pass from this job's base (the re-upscale menu shows it). */
  upscaleCost: number;
  /** For /compare: the labelled side-by-side sheet (built with `compareSheet`). */
  sheet?: Buffer;
}

function summary(view: ResultView, done: DoneEvent): string {
  const r = view.request;
  const target = hiresSize(r);
  const denoise =
    view.denoises.length === 1 ? `denoise ${view.denoises[0]}` : `denoise ${view.denoises.join(' / ')}`;
  return [
    `Seed ${r.seed} · ${samplerLabel(r)} · ${r.steps} steps${r.hiresSteps ? ` (+${r.hiresSteps} hires)` : ''} · ${denoise} · ${r.width}×${r.height} → ${target.width}×${target.height}`,
    `Cost ${units(view.cost)} units${costLeft(done.usage)} · ${duration(done.timings.totalMs)}`,
  ].join('\n');
}

function costLeft(usage: Usage | undefined): string {
  return usage && Number.isFinite(usage.budget) ? ` (${units(usage.remaining)} left today)` : '';
}

function resultFiles(view: ResultView, done: DoneEvent): FileOut[] {
  const seed = view.request.seed;
  const { base, upscaled } = done.images;
  if (view.sheet) {
    return [
      { name: `${seed}-compare.png`, data: view.sheet },
      ...upscaled.map((u) => ({ name: `${seed}-denoise-${u.denoise}.png`, data: u.png })),
    ];
  }
  const files: FileOut[] = [];
  if (base) files.push({ name: `${seed}-base.png`, data: base.png });
  for (const u of upscaled)
    files.push({
      name: upscaled.length === 1 ? `${seed}-hires.png` : `${seed}-hires-${u.denoise}.png`,
      data: u.png,
    });
  return files;
}

export function renderResult(view: ResultView, done: DoneEvent, extraNotes: string[] = []): ReplyPayload {
  const head =
    view.kind === 'upscale' ? '🔁 **Re-upscaled**' : view.sheet ? '🎨 **Denoise comparison**' : '🎨 **Done**';
  const lines = [`${head} · job \`${view.jobId}\``, promptBlock(view.request.prompt), summary(view, done)];
  const notes = [notesBlock(view.notes), ...extraNotes].filter(Boolean).join('\n');
  if (notes) lines.push(notes);
  return payload(lines.join('\n'), {
    files: resultFiles(view, done),
    components: resultRows({
      // for a re-upscaled job the handler starts from its parent's base latent
      jobId: view.jobId,
      denoisesMade: view.denoises,
      upscaleCost: view.upscaleCost,
    }),
  });
}

/** Why a job stopped, in words; internal details stay in the log. */
function failureText(view: JobView, event: FailedEvent): string {
  switch (event.reason) {
    case 'timeout':
      return 'it took longer than this bot allows';
    case 'restart-expired':
    case 'requeue-refused':
      return 'the bot restarted and could not pick it up again in time';
    case 'too-many-attempts':
      return 'the bot stopped twice while drawing it, so it was not tried again';
    case 'undelivered':
      return 'the bot stopped each time before its images could be sent, so it was not drawn again';
    case 'bad-option':
      // the engine refused the request (a prompt past the chunk cap): its message names the
      // option and says what it accepts, worded for the member
      return event.message;
    case 'engine-crashed':
      return `the image engine crashed (job \`${view.jobId}\`; it has been restarted, so try again)`;
    default:
      return `something went wrong on our side (job \`${view.jobId}\`; a server admin can look it up in the bot's log)`;
  }
}

export function renderFailed(view: JobView, event: FailedEvent): ReplyPayload {
  // a failed job is always refunded (here, or by the process that settled it)
  return payload(
    [
      `❌ **Failed** · job \`${view.jobId}\``,
      promptBlock(view.request.prompt),
      `The job stopped: ${failureText(view, event)}. Nothing was charged.`,
    ].join('\n'),
  );
}

export function renderCancelled(view: JobView): ReplyPayload {
  return payload(
    [
      `✖️ **Cancelled** · job \`${view.jobId}\``,
      promptBlock(view.request.prompt),
      'Nothing was charged.',
    ].join('\n'),
  );
}

/** The ephemeral ℹ️ Parameters answer: the infotext, ready to copy into A1111 or `parameters`. */
export function renderParameters(infotexts: { label: string; infotext: string }[]): ReplyPayload {
  const blocks = infotexts.map(({ label, infotext }) => `${label}\n${codeBlock(infotext)}`);
  return payload(blocks.join('\n'), { ephemeral: true });
}

/**
 * The same reply posted as a new channel message, when the interaction token has expired: it
 * names its owner (the only mention allowed) so they find it.
 */
export function forChannel(reply: ReplyPayload, ownerId: string): ReplyPayload {
  return {
    ...reply,
    content:
      `<@${ownerId}> your job finished after the original reply could no longer be edited:\n${reply.content}`.slice(
        0,
        2000,
      ),
    ephemeral: false,
    allowedMentions: { parse: [], users: [ownerId] },
  };
}
