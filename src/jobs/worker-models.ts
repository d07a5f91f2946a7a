// The workers that are up and the model each loaded (the worker_models table), for a gateway that
// loads none: its infotexts and "made with another model" notes name what the workers run, and it
// can tell its members when no worker is there to run their jobs. A row is live while its worker
// keeps refreshing seen_at; liveness is judged by the database's clock, as job heartbeats are.
// Workers are meant to run the same model; the live one started last is the one named.
import { and, count, desc, eq, gt, lt, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { jobs, type WorkerModelRow, workerModels } from '../db/schema.ts';

/** What infotexts name: the model, its hashes, an external VAE (the front end's ModelInfo). */
export type ModelInfo = WorkerModelRow['model'];

/** A worker's rows untouched this long are deleted when another worker starts (crashed ones). */
const FORGET_AFTER_MS = 86_400_000;

const seenWithin = (ms: number) => gt(workerModels.seenAt, sql`now() - make_interval(secs => ${ms / 1000})`);

/** Says this worker is up, with its model: inserts its row, or refreshes it (seen_at). */
export async function publishWorkerModel(db: Db, instanceId: string, model: ModelInfo): Promise<void> {
  const value = {
    name: model.name,
    hash: model.hash,
    ...(model.oldHash ? { oldHash: model.oldHash } : {}),
    ...(model.vae ? { vae: model.vae } : {}),
  };
  // an upsert, not an update: a row deleted meanwhile (a frozen worker's) comes back
  await db
    .insert(workerModels)
    .values({ instanceId, model: value })
    .onConflictDoUpdate({ target: workerModels.instanceId, set: { model: value, seenAt: sql`now()` } });
}

/** A worker stopping cleanly: gone at once, instead of once its row is stale. */
export async function removeWorker(db: Db, instanceId: string): Promise<void> {
  await db.delete(workerModels).where(eq(workerModels.instanceId, instanceId));
}

/** Drops the rows of workers silent for a day (crashed, never to come back under that id). */
export async function forgetDeadWorkers(db: Db): Promise<number> {
  const gone = await db
    .delete(workerModels)
    .where(lt(workerModels.seenAt, sql`now() - make_interval(secs => ${FORGET_AFTER_MS / 1000})`))
    .returning({ id: workerModels.instanceId });
  return gone.length;
}

/** Workers heard from within `staleMs`, and jobs waiting in the queue: one round trip. */
export async function workerState(db: Db, staleMs: number): Promise<{ live: number; queued: number }> {
  const [row] = await db
    .select({ live: count(), queued: db.$count(jobs, eq(jobs.status, 'queued')) })
    .from(workerModels)
    .where(seenWithin(staleMs));
  return { live: row?.live ?? 0, queued: row?.queued ?? 0 };
}

/** The model of the live worker started last; of the one heard from last if none is live. */
export async function latestWorkerModel(db: Db, staleMs: number): Promise<ModelInfo | undefined> {
  const [row] = await db
    .select({ model: workerModels.model })
    .from(workerModels)
    .orderBy(desc(seenWithin(staleMs)), desc(workerModels.startedAt), desc(workerModels.seenAt))
    .limit(1);
  return row?.model;
}

/** The other live workers whose model is not `hash`, with theirs (a fleet that draws differently). */
export async function workersWithOtherModels(
  db: Db,
  instanceId: string,
  hash: string,
  staleMs: number,
): Promise<{ instanceId: string; model: ModelInfo }[]> {
  const rows = await db
    .select({ instanceId: workerModels.instanceId, model: workerModels.model })
    .from(workerModels)
    .where(and(seenWithin(staleMs), ne(workerModels.instanceId, instanceId)));
  return rows.filter((r) => r.model.hash !== hash);
}
