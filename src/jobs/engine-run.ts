/**
 * One job on the engine, under its signal: a cancel or the timeout decides the outcome at once
 * (so the user is told), while `engineDone` settles only when the engine has really stopped
 * (it stops between steps), so the dispatch slot is not given to the next job before then.
 */
import type { Db } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import type { Latent, ProgressEvent } from '../diffusion/pipeline.ts';
import { loadLatent } from './job-store.ts';
import type { EngineLike, FailureReason, JobImages, JobServiceLog, JobTimings } from './types.ts';

export type Outcome =
  | { status: 'done'; images: JobImages & { latent?: Latent }; timings: JobTimings }
  | { status: 'failed'; reason: FailureReason; message: string }
  | { status: 'cancelled' };

export interface EngineRun {
  engine: EngineLike;
  db: Db;
  /** The job's row as its claim left it. */
  row: JobRow;
  /** Aborted by a cancel, or by the service stopping. */
  cancel: AbortSignal;
  /** Whether the abort was a user's cancel (else the service is stopping). */
  cancelRequested: () => boolean;
  timeoutMs: number;
  onProgress: (progress: ProgressEvent) => void;
  log: JobServiceLog;
}

const round = (ms: number) => Math.round(ms * 10) / 10;

export function runOnEngine(o: EngineRun): { outcome: Promise<Outcome>; engineDone: Promise<void> } {
  const { row } = o;
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = AbortSignal.any([o.cancel, timeout]);
  // queuedMs by the database's clock (both ends are its), totalMs by this host's
  const startedAt = row.startedAt ?? new Date();
  const begun = Date.now();
  const work = callEngine(o, { signal, onProgress: o.onProgress, denoises: row.denoises });
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  aborted.catch(() => {}); // a rejection nobody races for (the work won) is not an error
  const outcome = Promise.race([work, aborted]).then(
    (result): Outcome => ({
      status: 'done',
      images: result.images,
      timings: {
        queuedMs: startedAt.getTime() - row.createdAt.getTime(),
        ...(result.timings.baseMs !== undefined ? { baseMs: round(result.timings.baseMs) } : {}),
        hiresMs: result.timings.hiresMs.map(round),
        decodeMs: round(result.timings.decodeMs),
        totalMs: Date.now() - begun,
      },
    }),
    (error: unknown): Outcome => {
      if (timeout.aborted && !o.cancelRequested()) {
        return { status: 'failed', reason: 'timeout', message: `timed out after ${o.timeoutMs / 1000} s` };
      }
      if (o.cancel.aborted) return { status: 'cancelled' };
      const kind = (error as { kind?: string }).kind;
      if (kind === 'request') {
        return { status: 'failed', reason: 'bad-option', message: (error as Error).message };
      }
      const crashed = kind === 'crashed';
      o.log.error({ jobId: row.id, err: error }, crashed ? 'the engine died under a job' : 'job failed');
      const message = error instanceof Error ? error.message : String(error);
      return { status: 'failed', reason: crashed ? 'engine-crashed' : 'error', message };
    },
  );
  return {
    outcome,
    engineDone: work.then(
      () => {},
      () => {},
    ),
  };
}

async function callEngine(
  o: EngineRun,
  options: { signal: AbortSignal; onProgress: (p: ProgressEvent) => void; denoises: number[] },
): Promise<{
  images: JobImages & { latent?: Latent };
  timings: { baseMs?: number; hiresMs: number[]; decodeMs: number };
}> {
  const { row } = o;
  if (row.kind === 'imagine') {
    const result = await o.engine.generate(row.request, options);
    const { latent, ...base } = result.base;
    return { images: { base, upscaled: result.upscaled, latent }, timings: result.timings };
  }
  const latent = row.parentJobId ? await loadLatent(o.db, row.parentJobId) : undefined;
  if (!latent) throw new Error(`base latent of job ${row.parentJobId} is missing`);
  const result = await o.engine.upscale(row.request, latent, options);
  return { images: { upscaled: result.upscaled }, timings: result.timings };
}
