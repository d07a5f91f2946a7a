// The gateway half of the local Discord: HELLO, heartbeats, IDENTIFY → READY + GUILD_CREATE,
// RESUME refused (the client then identifies again), and dispatches to the identified sockets.
// Sharding as Discord does it: IDENTIFY names `shard: [id, count]`, and a guild's events go only
// to the session whose shard id is `(guild_id >> 22) % count`.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { snowflake } from './payloads.ts';

export type ShardPair = [id: number, count: number];

/** Discord's rule for which shard receives a guild's events. */
export function shardOf(guildId: string, count: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(count));
}

export interface GatewayOptions {
  token: string;
  heartbeatMs: number;
  /**
   * READY's `d`, and the GUILD_CREATE payloads that follow it, built when a client identifies,
   * for the guilds on its shard.
   */
  ready(
    sessionId: string,
    shard: ShardPair,
    onShard: (guildId: string) => boolean,
  ): { ready: Record<string, unknown>; guilds: Record<string, unknown>[] };
}

/** An identified session a dispatch went to. */
export interface Delivery {
  sessionId: string;
  shard: ShardPair;
}

interface Session {
  socket: WebSocket;
  seq: number;
  identified: Delivery | undefined;
}

export class Gateway {
  private readonly server = new WebSocketServer({ noServer: true });
  private readonly sessions = new Set<Session>();
  /** How many IDENTIFYs arrived: a restarted bot identifies again. */
  identifies = 0;

  constructor(private readonly o: GatewayOptions) {
    this.server.on('connection', (socket) => this.open(socket));
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.server.handleUpgrade(req, socket, head, (ws) => this.server.emit('connection', ws, req));
  }

  /**
   * Sends a dispatch (op 0) to every identified client, or, for a guild's event, to the sessions
   * of the guild's shard; returns the sessions it went to.
   */
  dispatch(t: string, d: unknown, guildId?: string): Delivery[] {
    const sent: Delivery[] = [];
    for (const s of this.sessions) {
      const to = s.identified;
      if (!to) continue;
      if (guildId !== undefined && shardOf(guildId, to.shard[1]) !== to.shard[0]) continue;
      this.send(s, { op: 0, t, s: ++s.seq, d });
      sent.push(to);
    }
    return sent;
  }

  /** The sessions that identified and are still connected. */
  get identified(): Delivery[] {
    return [...this.sessions].flatMap((s) => (s.identified ? [s.identified] : []));
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.socket.terminate();
    this.sessions.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private open(socket: WebSocket): void {
    const session: Session = { socket, seq: 0, identified: undefined };
    this.sessions.add(session);
    socket.on('close', () => this.sessions.delete(session));
    socket.on('message', (raw) => this.receive(session, raw.toString()));
    this.send(session, { op: 10, d: { heartbeat_interval: this.o.heartbeatMs } });
  }

  private receive(session: Session, raw: string): void {
    const frame = JSON.parse(raw) as { op: number; d: unknown };
    switch (frame.op) {
      case 1:
        this.send(session, { op: 11 });
        return;
      case 2: {
        const d = frame.d as { token?: string; shard?: ShardPair };
        if (d.token !== this.o.token && d.token !== `Bot ${this.o.token}`) {
          session.socket.close(4004, 'Authentication failed.');
          return;
        }
        const shard: ShardPair = d.shard ?? [0, 1];
        if (!(shard[1] >= 1 && shard[0] >= 0 && shard[0] < shard[1])) {
          session.socket.close(4010, 'Invalid shard.');
          return;
        }
        this.identifies++;
        const sessionId = snowflake();
        const onShard = (guildId: string) => shardOf(guildId, shard[1]) === shard[0];
        const { ready, guilds } = this.o.ready(sessionId, shard, onShard);
        session.identified = { sessionId, shard };
        this.send(session, { op: 0, t: 'READY', s: ++session.seq, d: ready });
        for (const g of guilds) this.send(session, { op: 0, t: 'GUILD_CREATE', s: ++session.seq, d: g });
        return;
      }
      case 6:
        this.send(session, { op: 9, d: false });
        return;
      default:
      // presence updates and the like: nothing to answer
    }
  }

  private send(session: Session, frame: unknown): void {
    if (session.socket.readyState === session.socket.OPEN) session.socket.send(JSON.stringify(frame));
  }
}
