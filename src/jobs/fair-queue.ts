/**
 * Jobs waiting for the GPU, served round-robin across users: each user has a FIFO, and the next
 * job comes from the user after the one served last; a newcomer is served right after the user
 * whose turn it is. A user with many jobs therefore delays another user's job by at most one.
 */
export interface QueuedItem {
  id: string;
  userId: string;
}

export class FairQueue<T extends QueuedItem> {
  /** Users in ring order, each with their FIFO of waiting jobs. */
  private readonly ring: { userId: string; items: T[] }[] = [];
  /** Index in `ring` of the user to serve next. */
  private cursor = 0;

  get size(): number {
    return this.ring.reduce((n, u) => n + u.items.length, 0);
  }

  push(item: T): void {
    const user = this.ring.find((u) => u.userId === item.userId);
    if (user) {
      user.items.push(item);
      return;
    }
    // a new user goes right after the user whose turn it is: one job ahead of them, at most
    const at = this.ring.length === 0 ? 0 : this.cursor + 1;
    this.ring.splice(at, 0, { userId: item.userId, items: [item] });
  }

  /** Takes the next job to run. */
  shift(): T | undefined {
    if (this.ring.length === 0) return undefined;
    const user = this.ring[this.cursor] as { userId: string; items: T[] };
    const item = user.items.shift() as T;
    if (user.items.length === 0) {
      this.ring.splice(this.cursor, 1);
      if (this.cursor >= this.ring.length) this.cursor = 0;
    } else {
      this.cursor = (this.cursor + 1) % this.ring.length;
    }
    return item;
  }

  find(id: string): T | undefined {
    for (const user of this.ring) {
      const item = user.items.find((it) => it.id === id);
      if (item) return item;
    }
    return undefined;
  }

  remove(id: string): T | undefined {
    for (let i = 0; i < this.ring.length; i++) {
      const user = this.ring[i] as { userId: string; items: T[] };
      const at = user.items.findIndex((it) => it.id === id);
      if (at < 0) continue;
      const [item] = user.items.splice(at, 1);
      if (user.items.length === 0) {
        this.ring.splice(i, 1);
        if (i < this.cursor) this.cursor--;
        if (this.cursor >= this.ring.length) this.cursor = 0;
      }
      return item;
    }
    return undefined;
  }

  /** The order jobs will run in if nothing else arrives; position = index + 1. */
  order(): T[] {
    const out: T[] = [];
    const queues = this.ring.map((u) => [...u.items]);
    let c = this.cursor;
    let left = this.size;
    while (left > 0) {
      const q = queues[c] as T[];
      const item = q.shift();
      if (item) {
        out.push(item);
        left--;
      }
      c = (c + 1) % queues.length;
    }
    return out;
  }
}
