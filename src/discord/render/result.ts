// The final edit of a job's reply: the images, a short summary and the buttons; or what ended it.
import { hiresSize } from '../../diffusion/request.ts';
import type { FinalEvent, OutputImage, Usage } from '../services.ts';
import { resultRows } from './components.ts';
import { isUserErrorCode, userErrorText } from './errors.ts';
import { notesBlock } from './notes.ts';
import { type FileOut, payload, type ReplyPayload } from './payload.ts';
import type { JobView } from './status.ts';
import { codeBlock, duration, promptBlock, samplerLabel, units } from './text.ts';

export type DoneEvent = Extract<FinalEvent, { type: 'done' }>;

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

function costLeft(usage: Usage): string {
  return Number.isFinite(usage.budget) ? ` (${units(usage.remaining)} left today)` : '';
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

export function renderFailed(view: JobView, event: Extract<FinalEvent, { type: 'failed' }>): ReplyPayload {
  const why =
    event.reason === 'timeout'
      ? 'it took longer than this bot allows'
      : event.reason === 'restart-expired'
        ? 'the bot restarted and could not pick it up again in time'
        : isUserErrorCode(event.error.code)
          ? userErrorText({ code: event.error.code, message: event.error.message, context: {} })
          : `something went wrong on our side (job \`${view.jobId}\`; a server admin can look it up in the bot's log)`;
  return payload(
    [
      `❌ **Failed** · job \`${view.jobId}\``,
      promptBlock(view.request.prompt),
      `The job stopped: ${why}. Nothing was charged.`,
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

export type { OutputImage };
