// The reply while a job waits and runs: queue position, then a progress bar per pass with the
// latest preview. Pure: the state is reduced from the job's events, the payload built from it.
import { type GenerationRequest, hiresSize } from '../../diffusion/request.ts';
import type { RequestNote } from '../build-request.ts';
import type { JobEvent, JobKind, Usage } from '../services.ts';
import { cancelRow } from './components.ts';
import { notesBlock } from './notes.ts';
import { payload, type ReplyPayload } from './payload.ts';
import { promptBlock, units } from './text.ts';

/** What every message about one job shows, whatever its state. */
export interface JobView {
  jobId: string;
  kind: JobKind;
  request: GenerationRequest;
  denoises: number[];
  cost: number;
  /** The owner's usage after reserving this job; unknown for a job a restart took over. */
  usage: Usage | undefined;
  notes: RequestNote[];
}

export interface PassProgress {
  step: number;
  total: number;
}

export interface ProgressState {
  phase: 'queued' | 'running';
  position: number;
  base: PassProgress | undefined;
  /** One entry per hires pass started, in order. */
  hires: PassProgress[];
  preview: Buffer | undefined;
  /** No GPU worker is online to run it (a gateway's view; never set where jobs run in-process). */
  noWorker: boolean;
}

export function initialProgress(position: number, noWorker = false): ProgressState {
  return { phase: 'queued', position, base: undefined, hires: [], preview: undefined, noWorker };
}

/** Under a waiting job's head while no worker is there to run it (the gateway checks every few seconds). */
export const NO_WORKER_NOTE = '⚠️ No GPU worker is online right now; your job will start when one comes back.';

export function reduceProgress(state: ProgressState, event: JobEvent): ProgressState {
  switch (event.type) {
    case 'queued':
    case 'requeued':
    case 'position':
      return { ...state, position: event.position };
    case 'started':
      return { ...state, phase: 'running' };
    case 'progress': {
      const { pass, step: at, total, preview } = event.progress;
      const next = { ...state, phase: 'running' as const, preview: preview ?? state.preview };
      const step = { step: at, total };
      if (pass === 'base') return { ...next, base: step };
      const hires = [...state.hires];
      const current = hires.at(-1);
      // a hires pass counts from step 1 again: that is the next denoise value's pass
      if (!current || at < current.step) hires.push(step);
      else hires[hires.length - 1] = step;
      return { ...next, hires };
    }
    default:
      return state;
  }
}

export function progressBar(step: number, total: number, width = 12): string {
  const filled = total > 0 ? Math.min(width, Math.round((step / total) * width)) : 0;
  return `${'▰'.repeat(filled)}${'▱'.repeat(width - filled)} ${step}/${total}`;
}

export function costLine(cost: number, usage: Usage | undefined): string {
  return usage && Number.isFinite(usage.budget)
    ? `Cost ${units(cost)} units · ${units(usage.remaining)} of ${units(usage.budget)} left today`
    : `Cost ${units(cost)} units`;
}

function passLines(view: JobView, state: ProgressState): string[] {
  const { request } = view;
  const target = hiresSize(request);
  const lines: string[] = [];
  if (view.kind === 'imagine') {
    const base = state.base ?? { step: 0, total: request.steps };
    lines.push(`Base ${request.width}×${request.height} ${progressBar(base.step, base.total)}`);
  }
  view.denoises.forEach((denoise, i) => {
    const pass = state.hires[i];
    const label = `Hires ${target.width}×${target.height} (denoise ${denoise})`;
    lines.push(pass ? `${label} ${progressBar(pass.step, pass.total)}` : `${label} waiting`);
  });
  return lines;
}

export function renderStatus(view: JobView, state: ProgressState): ReplyPayload {
  if (state.phase === 'queued') {
    const head = `⏳ **Queued** · position ${state.position} · job \`${view.jobId}\``;
    return statusPayload(view, state.noWorker ? [head, NO_WORKER_NOTE] : [head], [], undefined);
  }
  return statusPayload(
    view,
    [`🖌️ **Drawing** · job \`${view.jobId}\``],
    passLines(view, state),
    state.preview,
  );
}

/** Under the head of a job put back in the queue after it ran (src/discord/handed-back.ts). */
export const HANDED_BACK_NOTE = 'Its GPU worker stopped; it starts again when a worker takes it.';

/**
 * A job that was drawing and is back in the queue: said once, in place of its last progress
 * (whose preview goes), until a worker takes it and its follower edits the reply again.
 */
export function renderHandedBack(view: JobView): ReplyPayload {
  return statusPayload(
    view,
    [`⏳ **Queued again** · job \`${view.jobId}\``, HANDED_BACK_NOTE],
    [],
    undefined,
  );
}

/** Every status reply: its head lines, the prompt, the passes, cost and notes, and Cancel. */
function statusPayload(
  view: JobView,
  head: string[],
  passes: string[],
  preview: Buffer | undefined,
): ReplyPayload {
  const lines = [...head, promptBlock(view.request.prompt), ...passes, costLine(view.cost, view.usage)];
  const notes = notesBlock(view.notes);
  if (notes) lines.push(notes);
  return payload(lines.join('\n'), {
    files: preview ? [{ name: 'preview.png', data: preview }] : [],
    components: [cancelRow(view.jobId)],
  });
}
