/**
 * How a process hears that the shared queue changed: PostgreSQL notifications (a trigger on the
 * jobs table sends `status:id:owner` on QUEUE_CHANNEL for every new job and every status move;
 * a cancel for a job running elsewhere comes on CANCEL_CHANNEL), and a poll as the fallback for
 * a notification lost in a reconnect or a process with no LISTEN at all (a test's plain Db).
 */
import { CANCEL_CHANNEL, QUEUE_CHANNEL } from './pg-queue.ts';
import type { JobServiceLog } from './types.ts';

export type Listen = (channel: string, onPayload: (payload: string) => void) => Promise<() => Promise<void>>;

/** A row's move, from QUEUE_CHANNEL's payload. */
export interface QueueChange {
  status: string;
  jobId: string;
  /** Empty when the row has no owner. */
  owner: string;
}

export interface SignalHandlers {
  change(c: QueueChange): void;
  cancel(jobId: string): void;
  /** The fallback: runs every `pollMs` whatever was heard. */
  poll(): void;
}

export interface QueueSignals {
  /** Whether notifications come (else the poll alone finds new jobs). */
  readonly listening: boolean;
  stop(): Promise<void>;
}

export function parseChange(payload: string): QueueChange | undefined {
  // the owner is the rest: an instance id may hold colons itself
  const [status, jobId, ...owner] = payload.split(':');
  return status && jobId ? { status, jobId, owner: owner.join(':') } : undefined;
}

export async function startQueueSignals(
  o: { listen?: Listen | undefined; pollMs: number; log: JobServiceLog },
  on: SignalHandlers,
): Promise<QueueSignals> {
  const unlisten: (() => Promise<void>)[] = [];
  if (o.listen) {
    try {
      unlisten.push(
        await o.listen(QUEUE_CHANNEL, (payload) => {
          const change = parseChange(payload);
          if (change) on.change(change);
        }),
        await o.listen(CANCEL_CHANNEL, (jobId) => on.cancel(jobId)),
      );
    } catch (err) {
      // the poll still finds new jobs and cancels, only later
      o.log.warn({ err }, 'could not LISTEN for queue changes; polling only');
    }
  }
  const timer = setInterval(() => on.poll(), o.pollMs);
  timer.unref();
  return {
    listening: unlisten.length > 0,
    async stop() {
      clearInterval(timer);
      await Promise.allSettled(unlisten.map((u) => u()));
    },
  };
}
