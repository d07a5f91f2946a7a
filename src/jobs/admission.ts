// Admission: a per-user slot and a queue slot per job, or a UserError saying which limit was hit.
import { UserError } from '../user-error.ts';
import type { Limiters, Slot } from './limiters.ts';

export async function admitJob(limiters: Limiters, guildId: string, userId: string): Promise<Slot[]> {
  const { users, queue } = limiters;
  const user = await users.tryAcquire(`${guildId}:${userId}`);
  if (!user) {
    const limit = users.limit;
    throw new UserError(
      'user-limit',
      `You already have ${limit} job${limit === 1 ? '' : 's'} queued or running; wait for one to finish or cancel it.`,
      { limit },
    );
  }
  let slot: Slot | undefined;
  try {
    slot = await queue.tryAcquire('all');
  } catch (err) {
    user.release();
    throw err;
  }
  if (!slot) {
    user.release();
    const waiting = await queue.held('all').catch(() => queue.limit);
    throw new UserError(
      'queue-full',
      `The queue is full (${waiting} jobs waiting or running). Try again in a few minutes.`,
      {
        waiting,
        max: queue.limit,
      },
    );
  }
  return [user, slot];
}
