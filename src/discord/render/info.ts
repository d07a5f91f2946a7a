// Answers to /quota, /queue and /settings: plain text, ephemeral.
import { hiresSize } from '../../diffusion/request.ts';
import type { QueueView, Usage } from '../services.ts';
import type { GuildSettings } from '../settings.ts';
import { ephemeral, type ReplyPayload } from './payload.ts';
import { codeBlock, plural, relative, samplerLabel, truncate, units } from './text.ts';

export function renderQuota(usage: Usage, defaultJobCost: number): ReplyPayload {
  if (usage.blocked) return ephemeral('You are blocked from generating images in this server.');
  if (!Number.isFinite(usage.budget)) {
    return ephemeral(
      `Your budget here is unlimited. You have used ${units(usage.used)} units today; a default job costs ${units(defaultJobCost)}.`,
    );
  }
  const jobs = defaultJobCost > 0 ? Math.floor(usage.remaining / defaultJobCost + 1e-9) : 0;
  return ephemeral(
    [
      `You have **${units(usage.remaining)}** of ${units(usage.budget)} units left today (${units(usage.used)} used).`,
      `A default job costs ${units(defaultJobCost)} units: ${plural(jobs, 'more job')} today.`,
      `Your quota resets ${relative(usage.resetsAt)}.`,
    ].join('\n'),
  );
}

/** On a gateway whose GPU workers are all gone: why the queue does not move. */
export const NO_WORKER_QUEUE_NOTE =
  '⚠️ No GPU worker is online right now; queued jobs will start when one comes back.';

export function renderQueue(view: QueueView): ReplyPayload {
  const head = [
    `The queue holds ${plural(view.length, 'job')} (at most ${view.max}).`,
    ...(view.workersLive === 0 ? [NO_WORKER_QUEUE_NOTE] : []),
  ].join('\n');
  if (view.mine.length === 0) return ephemeral(`${head}\nYou have no jobs waiting or running.`);
  const lines = view.mine.map((j) => {
    const where = j.status === 'running' ? 'running' : `position ${j.position}`;
    return `\`${j.jobId}\` ${j.kind === 'upscale' ? 're-upscale' : 'image'} · ${where} · ${truncate(j.prompt.replace(/\s+/g, ' '), 60)}`;
  });
  return ephemeral(`${head}\nYour jobs:\n${codeBlock(lines.join('\n'))}`);
}

export function renderSettings(
  s: GuildSettings,
  budget: { dailyUnits: number; setHere: boolean },
  /** Live GPU workers, where they are other processes (a gateway) and known. */
  workersLive?: number,
): ReplyPayload {
  const d = s.defaults;
  const target = hiresSize(d);
  const lines = [
    '**This server’s image settings**',
    `Defaults: ${d.width}×${d.height} → ${target.width}×${target.height} (hires ×${d.hiresScale}, ${d.upscaler}), ${d.steps} steps${d.hiresSteps ? ` (+${d.hiresSteps} hires)` : ''}, ${samplerLabel(d)}, CFG ${d.cfg}, denoise ${d.denoise}`,
    `Noise: ${d.rng === 'nv' ? 'NV (A1111 GPU on NVIDIA)' : 'CPU'} · ENSD ${d.ensd}`,
    `Limits: ${s.limits.steps} steps, base side ${s.limits.baseSide}, hires side ${s.limits.hiresSide}, prompt ${s.limits.promptChars} characters`,
    `Daily budget per member: ${budget.dailyUnits === 0 ? 'unlimited' : `${units(budget.dailyUnits)} units`}${budget.setHere ? '' : ' (the bot default)'}`,
    `Blocked words: ${s.blockedWords.length === 0 ? 'none' : `${s.blockedWords.length} (${codeBlock(s.blockedWords.join(', '))})`}`,
  ];
  if (workersLive !== undefined)
    lines.push(
      workersLive === 0
        ? 'GPU workers online: **none** (queued jobs wait until one starts)'
        : `GPU workers online: ${workersLive}`,
    );
  return ephemeral(lines.join('\n'));
}
