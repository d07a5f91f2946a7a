/**
 * The jobs this process queued, while they wait in the shared queue: their handles hear their
 * positions, read from the database (so they are right whichever processes queue and claim),
 * and are told when another process claims one ('interrupted': that process answers it now).
 * Their admission slots stay held here until the job ends, wherever it runs.
 */
import type { Db } from '../db/client.ts';
import { jobStatuses } from './job-store.ts';
import type { Slot } from './limiters.ts';
import { queueState } from './pg-queue.ts';
import type { QueueChange } from './queue-signals.ts';
import type { Held } from './service.ts';
import type { JobEvent, JobServiceLog } from './types.ts';

const ENDED = new Set(['done', 'failed', 'cancelled']);
const READ_EVERY_MS = 100;
/**
 * A read of every position costs more as the queue grows (85 ms at 20 000 waiting jobs): the
 * next one waits at least this many times as long as the last took, so that refreshing
 * positions never holds the database more than a tenth of the time.
 */
const READ_COST_FACTOR = 10;

export interface WaitingHooks {
  db: Db;
  instanceId: string;
  log: JobServiceLog;
  emit(event: JobEvent, h: Held): void;
  /** A waiting job left the queue, not claimed here: ended or claimed elsewhere; says which. */
  gone(h: Held): Promise<'running-elsewhere' | 'ended' | 'here'>;
}

export class Waiting {
  private readonly jobs = new Map<string, Held>();
  private readonly positions = new Map<string, number>();
  /** Slots of jobs another process runs, released when the job ends. */
  private readonly elsewhere = new Map<string, Slot[]>();
  private refreshing: Promise<void> | undefined;
  private again = false;
  private lastRead = 0;
  private lastReadMs = 0;

  constructor(private readonly o: WaitingHooks) {}

  get size(): number {
    return this.jobs.size;
  }

  add(h: Held, position: number): void {
    this.jobs.set(h.id, h);
    this.positions.set(h.id, position);
  }

  find(id: string): Held | undefined {
    return this.jobs.get(id);
  }

  /** Takes a job out (claimed or ended here). */
  take(id: string): Held | undefined {
    const h = this.jobs.get(id);
    this.jobs.delete(id);
    this.positions.delete(id);
    return h;
  }

  /** Jobs waiting here, in their last known order. */
  order(): Held[] {
    return [...this.jobs.values()].sort(
      (a, b) => (this.positions.get(a.id) ?? 0) - (this.positions.get(b.id) ?? 0),
    );
  }

  /** A row moved (a notification): a claim elsewhere hands the job off; positions may have moved. */
  changed(c: QueueChange): void {
    if (ENDED.has(c.status)) this.release(c.jobId);
    const h = this.jobs.get(c.jobId);
    if (h && c.status === 'running' && c.owner !== this.o.instanceId) this.handOff(h);
    if (this.jobs.size > 0) void this.refresh();
  }

  private handOff(h: Held): void {
    this.take(h.id);
    this.elsewhere.set(h.id, h.slots);
    this.o.emit({ type: 'interrupted', jobId: h.id }, h);
  }

  private release(id: string): void {
    for (const s of this.elsewhere.get(id) ?? []) s.release();
    this.elsewhere.delete(id);
  }

  /**
   * Reads every position again: one read at a time, at most every READ_EVERY_MS, or ten times
   * the last read's time if longer (a busy queue changes hundreds of times a second; a member's
   * reply is edited every 2 s at most), and a request meanwhile runs once more after.
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.again = false;
        const gap = Math.max(READ_EVERY_MS, READ_COST_FACTOR * this.lastReadMs);
        const wait = this.lastRead + gap - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        this.lastRead = Date.now();
        await this.readPositions().catch((err) =>
          this.o.log.warn({ err }, 'could not read queue positions; the next change retries'),
        );
        this.lastReadMs = Date.now() - this.lastRead;
      } while (this.again);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async readPositions(): Promise<void> {
    if (this.jobs.size === 0) return;
    const state = await queueState(this.o.db);
    for (const h of this.order()) {
      if (!this.jobs.has(h.id)) continue; // claimed here meanwhile
      const position = state.positions.get(h.id);
      if (position === undefined) {
        const what = await this.o.gone(h);
        if (what === 'running-elsewhere' && this.jobs.has(h.id)) this.handOff(h);
        continue;
      }
      if (this.positions.get(h.id) !== position) {
        this.positions.set(h.id, position);
        this.o.emit({ type: 'position', jobId: h.id, position, queueLength: state.waiting }, h);
      }
    }
  }

  /** The fallback for lost notifications: positions, and the ends of jobs run elsewhere. */
  async poll(): Promise<void> {
    await this.refresh();
    if (this.elsewhere.size === 0) return;
    const rows = await jobStatuses(this.o.db, [...this.elsewhere.keys()]);
    const known = new Set(rows.map((r) => r.id));
    for (const r of rows) if (ENDED.has(r.status)) this.release(r.id);
    for (const id of [...this.elsewhere.keys()]) if (!known.has(id)) this.release(id);
  }

  /** On stop: every slot goes back; waiting handles end with 'interrupted' (caller's part). */
  drain(): Held[] {
    for (const id of [...this.elsewhere.keys()]) this.release(id);
    const all = [...this.jobs.values()];
    this.jobs.clear();
    this.positions.clear();
    return all;
  }
}
