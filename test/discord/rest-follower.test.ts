// A worker's Discord side checks its token with Discord at start, DISCORD_APPLICATION_ID set or
// not: a refused token or another application's id would run and charge jobs whose replies it
// could never edit. When the id is set and Discord cannot be reached, it starts anyway.
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { startRestFollower } from '../../src/discord/rest-follower.ts';
import { createLogger } from '../../src/log.ts';
import { DiscordStandIn } from '../support/discord-stand-in.ts';
import { ScriptedServices } from '../support/front-end-services.ts';

describe('a worker’s start-up check of its Discord token', () => {
  let standIn: DiscordStandIn;
  beforeAll(async () => {
    standIn = await DiscordStandIn.start();
  });
  afterAll(() => standIn?.stop());

  const start = (env: Record<string, string>) => {
    const logs: { msg: string }[] = [];
    const log = createLogger({
      level: 'info',
      secrets: [standIn.token],
      destination: { write: (line: string) => logs.push(JSON.parse(line) as { msg: string }) },
    });
    const config = loadConfig({ DISCORD_TOKEN: standIn.token, DISCORD_API_URL: standIn.apiUrl, ...env });
    return { logs, follower: startRestFollower(config, log, new ScriptedServices()) };
  };

  it('starts with the application the token belongs to, the id set or not', async () => {
    for (const env of [{}, { DISCORD_APPLICATION_ID: standIn.applicationId }] as Record<string, string>[]) {
      const { follower } = start(env);
      const f = await follower;
      expect(f.applicationId).toBe(standIn.applicationId);
      await f.stop();
    }
  });

  it('refuses a token Discord refuses, the id set or not, in one line naming DISCORD_TOKEN', async () => {
    for (const env of [{}, { DISCORD_APPLICATION_ID: standIn.applicationId }] as Record<string, string>[]) {
      const { follower } = start({ ...env, DISCORD_TOKEN: 'MTIz.not.the-token' });
      await expect(follower).rejects.toThrow(/^Discord refused DISCORD_TOKEN \(401 Unauthorized\)/);
    }
  });

  it('refuses an application id that is not the token’s, naming both', async () => {
    const { follower } = start({ DISCORD_APPLICATION_ID: '123456789012345678' });
    await expect(follower).rejects.toThrow(
      `DISCORD_APPLICATION_ID is 123456789012345678, but DISCORD_TOKEN is the token of application ${standIn.applicationId}`,
    );
  });

  it('starts with the configured id when Discord cannot be reached, and says so', async () => {
    // a port that accepts nothing: taken, then freed
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((r) => probe.close(() => r()));
    const { follower, logs } = start({
      DISCORD_APPLICATION_ID: standIn.applicationId,
      DISCORD_API_URL: `http://127.0.0.1:${port}/api`,
    });
    const f = await follower;
    expect(f.applicationId).toBe(standIn.applicationId);
    expect(logs.map((l) => l.msg)).toContain(
      'could not check DISCORD_TOKEN with Discord; going on with DISCORD_APPLICATION_ID',
    );
    await f.stop();
  }, 30_000);

  /** An API at a local port answering every request with `answer`, or never answering. */
  async function fakeApi(answer?: { status: number; body: object }) {
    const server = createHttpServer((_req, res) => {
      if (!answer) return; // holds the request open
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    return {
      url: `http://127.0.0.1:${port}/api`,
      close: () => {
        server.closeAllConnections();
        server.close();
      },
    };
  }

  it('refuses when Discord answers with another refusal (403), the id set: it did answer', async () => {
    const api = await fakeApi({ status: 403, body: { message: 'Missing Access', code: 50001 } });
    try {
      const { follower } = start({ DISCORD_APPLICATION_ID: standIn.applicationId, DISCORD_API_URL: api.url });
      await expect(follower).rejects.toThrow(
        'could not ask Discord whose token DISCORD_TOKEN is: Missing Access',
      );
    } finally {
      api.close();
    }
  });

  it('gives up waiting for an answer after 10 s when the id is set, and starts', async () => {
    const api = await fakeApi();
    try {
      const t0 = Date.now();
      const { follower, logs } = start({
        DISCORD_APPLICATION_ID: standIn.applicationId,
        DISCORD_API_URL: api.url,
      });
      const f = await follower;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(9_900);
      expect(f.applicationId).toBe(standIn.applicationId);
      expect(logs.map((l) => l.msg)).toContain(
        'could not check DISCORD_TOKEN with Discord; going on with DISCORD_APPLICATION_ID',
      );
      await f.stop();
    } finally {
      api.close();
    }
  }, 40_000);
});
