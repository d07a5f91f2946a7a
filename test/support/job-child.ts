// A bot process for the restart test: runs the job service with the real engine on a tiny model,
// submits the jobs it is given, and reports events as JSON lines until it is killed.
import { openDatabase } from '../../src/db/client.ts';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';
import { Engine } from '../../src/engine/engine.ts';
import { createTestJobService } from './job-service.ts';

interface ChildConfig {
  location: { url: string } | { pgliteDir: string };
  modelDir: string;
  jobs: { userId: string; prompt: string; expiresInMs: number }[];
}

const config = JSON.parse(process.argv[2] as string) as ChildConfig;
const say = (obj: object) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const database = await openDatabase(
  'url' in config.location ? { url: config.location.url } : config.location,
);
const engine = await Engine.start({
  modelDir: config.modelDir,
  executionProviders: ['cpu'],
  previewEvery: 0,
  timestepRounding: 'fp16',
});
const { service } = createTestJobService(database.db, engine, { heartbeatMs: 100, staleMs: 60_000 });
service.on((e) => say({ event: e.type, jobId: e.jobId }));
await service.start();
for (const job of config.jobs) {
  const { jobId } = await service.submit({
    kind: 'imagine',
    guildId: 'g',
    channelId: 'c',
    userId: job.userId,
    request: {
      ...DEFAULT_REQUEST,
      prompt: job.prompt,
      seed: 7,
      width: 64,
      height: 64,
      steps: 8,
      hiresSteps: 8,
    },
    interaction: { token: `token-${job.prompt}`, expiresAt: new Date(Date.now() + job.expiresInMs) },
  });
  say({ event: 'submitted', jobId, prompt: job.prompt });
}
