/**
 * The front end's `FrontEndServices` over the real parts: the job service (admission, quota
 * reservation, queue, recovery), the quota ledger and the per-server settings table. Plain data
 * in and out; the only state kept here is the list of jobs a restart took over before the bot
 * was ready to follow them.
 */
import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { type JobRow, jobs } from '../db/schema.ts';
import { jobCost } from '../jobs/cost.ts';
import { answered, databaseUnavailable, NoAnswerError } from '../jobs/db-deadline.ts';
import { getJob, recordDelivery } from '../jobs/job-store.ts';
import { queueState } from '../jobs/pg-queue.ts';
import { guildDailyUnits, resetUsage, setBlocked, setDailyUnits } from '../jobs/quota.ts';
import { type QuotaSettings, usage } from '../jobs/quota-standing.ts';
import { retrying } from '../jobs/retry.ts';
import type { FailureReason, JobService } from '../jobs/service.ts';
import type { ModelInfo } from './build-request.ts';
import { loadGuildSettings, updateGuildSettings } from './guild-settings-store.ts';
import { relayHandBacks } from './hand-back-relay.ts';
import type { FrontEndServices, HandedBackJob, JobInfo, RecoveredJob, WorkersView } from './services.ts';
import { effectiveSettings } from './settings.ts';

export interface BackendParts {
  config: Pick<Config, 'limits' | 'generation' | 'queue'>;
  db: Db;
  jobs: JobService;
  quota: QuotaSettings;
  model: () => ModelInfo;
  /** A gateway's view of the GPU workers. */
  workers?: WorkersView;
}

/** How recovery ends a job it must not run again (src/jobs/recovery.ts, JobService.adopt). */
const RECOVERY_FAILURES: ReadonlySet<string> = new Set<FailureReason>([
  'restart-expired',
  'too-many-attempts',
  'undelivered',
  'requeue-refused',
]);

function infoOf(row: JobRow): JobInfo {
  return {
    jobId: row.id,
    kind: row.kind,
    guildId: row.guildId,
    channelId: row.channelId,
    userId: row.userId,
    status: row.status,
    request: row.request,
    denoises: row.denoises,
    cost: row.cost,
    parentJobId: row.parentJobId ?? undefined,
    resultMessageIds: row.resultMessageIds ?? [],
  };
}

/** The interaction a job row keeps, to answer through while its token is valid. */
function interactionOf(row: JobRow): HandedBackJob['interaction'] {
  return row.interactionToken && row.interactionExpiresAt
    ? { token: row.interactionToken, expiresAt: row.interactionExpiresAt }
    : undefined;
}

/**
 * A read a command makes before it answers: Discord drops an interaction not answered in 3 s,
 * so a database that does not answer in 2 s is refused as unavailable (a reply the member sees)
 * instead of leaving them with "the application did not respond".
 */
async function beforeAck<T>(what: string, read: Promise<T>): Promise<T> {
  try {
    return await answered(what, read, ACK_READ_MS);
  } catch (err) {
    if (err instanceof NoAnswerError) throw databaseUnavailable(err);
    throw err;
  }
}
const ACK_READ_MS = 2_000;

/** How long a delivery's record is retried: well within the job's delivery hold (service.ts). */
const RECORD_RETRY_MS = 60_000;

/**
 * Call before the job service starts: jobs it recovers at start are kept until the bot
 * subscribes with `onRecovered` (it logs in after the services are up), then handed over; so
 * are jobs recovery failed instead (too old, tried twice), whose owners are otherwise never told.
 */
export function createBackend(parts: BackendParts): FrontEndServices {
  const { db, jobs: service, quota } = parts;
  const listeners = new Set<(job: RecoveredJob) => void>();
  /**
   * Handed over before the bot subscribed; `ended`: recovery failed it, nobody holds its events;
   * `settledHere`: it ended here meanwhile (its channel keeps the events, the result to deliver).
   */
  const unclaimed: { job: RecoveredJob; ended: boolean; settledHere: boolean }[] = [];

  const handOver = (job: RecoveredJob, ended: boolean) => {
    if (listeners.size === 0) {
      const kept = { job, ended, settledHere: false };
      unclaimed.push(kept);
      // (interrupted: another process holds it now and answers; its stale progress is not shown)
      void job.events.result.then((end) => {
        kept.settledHere = end.type !== 'interrupted';
      });
    }
    for (const l of listeners) l(job);
  };

  service.on((event) => {
    if (event.type === 'requeued') {
      const events = service.watch(event.jobId);
      if (!events) return;
      const row = event.job;
      handOver(
        {
          info: infoOf(row),
          interaction: interactionOf(row),
          events,
        },
        false,
      );
    } else if (event.type === 'failed' && RECOVERY_FAILURES.has(event.reason)) {
      // a job recovery ended without running it (nobody holds its events): its owner is told
      // once, in the channel (the row's token is cleared as a job ends)
      handOver(
        {
          info: infoOf(event.job),
          interaction: undefined,
          events: {
            result: Promise.resolve(event),
            async *[Symbol.asyncIterator]() {
              yield event;
            },
          },
        },
        true,
      );
    }
  });

  const onHandedBack = relayHandBacks({
    db,
    jobs: service,
    jobOf: (row) => ({ info: infoOf(row), interaction: interactionOf(row) }),
  });
  const { workers } = parts;
  return {
    model: parts.model,
    ...(workers ? { workers } : {}),
    async guildSettings(guildId) {
      return effectiveSettings(
        parts.config,
        await beforeAck('reading the server settings', loadGuildSettings(db, guildId)),
      );
    },
    storedGuildSettings: (guildId) =>
      beforeAck('reading the server settings', loadGuildSettings(db, guildId)),
    updateGuildSettings: (guildId, change, by) => updateGuildSettings(db, guildId, change, by),
    cost: jobCost,
    submit(input) {
      // (a re-upscale whose base latent the retention sweep deleted is refused in there)
      return service.submit({
        kind: input.kind,
        guildId: input.requester.guildId,
        channelId: input.requester.channelId,
        userId: input.requester.userId,
        roleIds: input.requester.roleIds,
        request: input.request,
        denoises: input.denoises,
        ...(input.parentJobId ? { parentJobId: input.parentJobId } : {}),
        interaction: input.interaction,
      });
    },
    cancel: (jobId, by) => service.cancel(jobId, by),
    async job(jobId) {
      // every button loads its job before it answers
      const row = await beforeAck('reading the job', getJob(db, jobId));
      return row ? infoOf(row) : undefined;
    },
    async recordMessages(jobId, messageIds) {
      // from then on, no restart draws it again (src/jobs/recovery.ts): retried through a blink,
      // for the images are out already, and an unrecorded job is drawn and posted again
      await retrying('recording a delivery', () => recordDelivery(db, jobId, messageIds), {
        forMs: RECORD_RETRY_MS,
      });
      service.delivered(jobId);
    },
    usage: (r) => usage(db, { guildId: r.guildId, userId: r.userId, roleIds: r.roleIds }, quota),
    async queue(r) {
      // from the database: right whichever processes queued and run the jobs; both reads at once,
      // within the time an unanswered interaction allows
      const [state, mine] = await beforeAck(
        'reading the queue',
        Promise.all([
          queueState(db),
          db
            .select()
            .from(jobs)
            .where(
              and(
                eq(jobs.guildId, r.guildId),
                eq(jobs.userId, r.userId),
                inArray(jobs.status, ['queued', 'running']),
              ),
            )
            .orderBy(asc(jobs.createdAt)),
        ]),
      );
      return {
        mine: mine.map((row) => ({
          jobId: row.id,
          kind: row.kind,
          status: row.status as 'queued' | 'running',
          // 0 while running
          position: state.positions.get(row.id) ?? 0,
          prompt: row.request.prompt,
        })),
        length: state.waiting + state.running,
        max: parts.config.queue.max,
        ...(workers?.live() !== undefined ? { workersLive: workers.live() } : {}),
      };
    },
    // /quota-admin answers after its write: a write the database takes after the deadline still
    // lands, and the admin, told to try again, sets the same value again
    quota: {
      guildDailyUnits: (guildId) =>
        beforeAck('reading the server budget', guildDailyUnits(db, guildId, quota)),
      setDailyUnits: (guildId, target, units, by) =>
        beforeAck('setting a budget', setDailyUnits(db, guildId, target, units, by)),
      resetUser: (guildId, userId, by) =>
        beforeAck('resetting a budget', resetUsage(db, { guildId, userId }, quota, by)),
      setBlocked: (guildId, userId, blocked, by) =>
        beforeAck('blocking a member', setBlocked(db, guildId, userId, blocked, by)),
    },
    mayReport: (jobId) => service.mayReport(jobId),
    onRecovered(listener) {
      listeners.add(listener);
      // jobs recovered before anyone listened: still held here, ended here since (a redraw at
      // start-up can be done before the bot has logged in), or ended by recovery
      for (const { job, ended, settledHere } of unclaimed.splice(0)) {
        if (ended || settledHere || service.watch(job.info.jobId)) listener(job);
      }
      return () => listeners.delete(listener);
    },
    onHandedBack,
  };
}
