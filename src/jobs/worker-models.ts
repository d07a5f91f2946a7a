// The model each worker loaded, for a gateway that loads none: its infotexts and "made with
// another model" notes name what the workers run. Workers are meant to run the same model;
// the one heard from last is the one named.
import { desc, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { type WorkerModelRow, workerModels } from '../db/schema.ts';

/** What infotexts name: the model, its hashes, an external VAE (the front end's ModelInfo). */
export type ModelInfo = WorkerModelRow['model'];

export async function publishWorkerModel(db: Db, instanceId: string, model: ModelInfo): Promise<void> {
  const value = {
    name: model.name,
    hash: model.hash,
    ...(model.oldHash ? { oldHash: model.oldHash } : {}),
    ...(model.vae ? { vae: model.vae } : {}),
  };
  await db
    .insert(workerModels)
    .values({ instanceId, model: value })
    .onConflictDoUpdate({ target: workerModels.instanceId, set: { model: value, seenAt: sql`now()` } });
}

export async function latestWorkerModel(db: Db): Promise<ModelInfo | undefined> {
  const [row] = await db.select().from(workerModels).orderBy(desc(workerModels.seenAt)).limit(1);
  return row?.model;
}
