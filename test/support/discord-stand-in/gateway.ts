// The gateway half of the local Discord: HELLO, heartbeats, IDENTIFY → READY + GUILD_CREATE,
// RESUME refused (the client then identifies again), and dispatches to every identified socket.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';

export interface GatewayOptions {
  token: string;
  heartbeatMs: number;
  /** READY's `d`, and the GUILD_CREATE payloads that follow it, built when a client identifies. */
  ready(): { ready: Record<string, unknown>; guilds: Record<string, unknown>[] };
}

interface Session {
  socket: WebSocket;
  seq: number;
  identified: boolean;
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

  /** Sends a dispatch (op 0) to every identified client. */
  dispatch(t: string, d: unknown): number {
    let sent = 0;
    for (const s of this.sessions) {
      if (!s.identified) continue;
      this.send(s, { op: 0, t, s: ++s.seq, d });
      sent++;
    }
    return sent;
  }

  get connected(): number {
    return [...this.sessions].filter((s) => s.identified).length;
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.socket.terminate();
    this.sessions.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private open(socket: WebSocket): void {
    const session: Session = { socket, seq: 0, identified: false };
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
        const d = frame.d as { token?: string };
        if (d.token !== this.o.token && d.token !== `Bot ${this.o.token}`) {
          session.socket.close(4004, 'Authentication failed.');
          return;
        }
        this.identifies++;
        const { ready, guilds } = this.o.ready();
        session.identified = true;
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
