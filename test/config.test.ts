import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../src/config.ts';
import { secretsOf } from '../src/config-secrets.ts';

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const c = loadConfig({});
    expect(c.discord.token).toBeUndefined();
    expect(c.model).toEqual({
      dir: 'models',
      executionProviders: ['cpu'],
      workers: 1,
      deviceIds: undefined,
      warmUp: false,
      vae: undefined,
      dtype: 'auto',
      cacheDir: 'data/model-cache',
    });
    expect(c.database).toEqual({ url: undefined, pgliteDir: 'data/pglite' });
    expect(c.queue).toEqual({ max: 20, perUser: 2, jobTimeoutMs: 600_000 });
    expect(c.quota).toEqual({ dailyUnits: 50, resetHourUtc: 0 });
    expect(c.generation).toEqual({ rng: 'nv', ensd: 0, previewEvery: 5 });
  });

  it('reads and types every kind of value', () => {
    const c = loadConfig({
      DISCORD_TOKEN: 'abc.def.ghi',
      DISCORD_GUILD_ID: '123456789012345678',
      EXECUTION_PROVIDERS: 'CUDA, cpu',
      USER_MAX_JOBS: '5',
      QUOTA_DAILY_UNITS: '12.5',
      RNG_SOURCE: 'CPU',
      DATABASE_URL: 'postgres://u:p@localhost:5432/db',
      LOG_LEVEL: 'debug',
    });
    expect(c.discord.token).toBe('abc.def.ghi');
    expect(c.discord.guildId).toBe('123456789012345678');
    expect(c.model.executionProviders).toEqual(['cuda', 'cpu']);
    expect(c.queue.perUser).toBe(5);
    expect(c.quota.dailyUnits).toBe(12.5);
    expect(c.generation.rng).toBe('cpu');
    expect(c.logLevel).toBe('debug');
  });

  it('reads DISCORD_SHARDS as a count or auto, and only with a DATABASE_URL the shards can share', () => {
    const db = { DATABASE_URL: 'postgres://u:p@localhost:5432/db' };
    expect(loadConfig({}).discord.shards).toBeUndefined();
    expect(loadConfig({ ...db, DISCORD_SHARDS: '4' }).discord.shards).toBe(4);
    expect(loadConfig({ ...db, DISCORD_SHARDS: ' Auto ' }).discord.shards).toBe('auto');
    for (const bad of ['0', '1e3', '0x10', '2.5', '10001', '-1']) {
      expect(problemsOf({ ...db, DISCORD_SHARDS: bad })).toEqual([
        `DISCORD_SHARDS must be auto or a whole number from 1 to 10000 (got "${bad}")`,
      ]);
    }
    expect(problemsOf({ DISCORD_SHARDS: '2' })).toEqual([
      'DISCORD_SHARDS needs DATABASE_URL: the shard processes share one PostgreSQL (got "2")',
    ]);
    expect(loadConfig({ ...db, DISCORD_SHARDS: '2', PROCESS_ROLE: 'gateway' }).discord.shards).toBe(2);
    expect(problemsOf({ ...db, DISCORD_SHARDS: '2', PROCESS_ROLE: 'worker' })).toEqual([
      'DISCORD_SHARDS is for PROCESS_ROLE=gateway or all: a worker has no gateway connection (got "2")',
    ]);
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ DISCORD_TOKEN: '', DATABASE_URL: '  ' }).database.url).toBeUndefined();
  });

  it('names the variable, the problem, the accepted range and the bad value', () => {
    const problems = problemsOf({
      USER_MAX_JOBS: '0',
      QUOTA_RESET_HOUR_UTC: '24.5',
      EXECUTION_PROVIDERS: 'gpu',
    });
    expect(problems).toContain('USER_MAX_JOBS must be a whole number from 1 to 100 (got "0")');
    expect(problems).toContain('QUOTA_RESET_HOUR_UTC must be a whole number from 0 to 23 (got "24.5")');
    expect(problems).toContain(
      'EXECUTION_PROVIDERS must be a comma list of cpu, cuda, tensorrt, dml, coreml, webgpu (unknown: gpu) (got "gpu")',
    );
  });

  it('GPU_DEVICE_IDS starts one engine per GPU, and needs a GPU provider', () => {
    const c = loadConfig({ EXECUTION_PROVIDERS: 'cuda,cpu', GPU_DEVICE_IDS: '0, 2', ENGINE_WORKERS: '5' });
    expect(c.model.deviceIds).toEqual([0, 2]);
    expect(c.model.workers).toBe(2);
    expect(c.model.warmUp).toBe(true); // auto: on with a GPU provider
    expect(loadConfig({ ENGINE_WARMUP: 'on' }).model.warmUp).toBe(true);
    // webgpu builds its shaders on the first runs at a shape: warmed up too
    expect(loadConfig({ EXECUTION_PROVIDERS: 'webgpu' }).model.warmUp).toBe(true);
    expect(loadConfig({ EXECUTION_PROVIDERS: 'cpu' }).model.warmUp).toBe(false);
    // a provider named twice is kept once (onnxruntime refuses one registered twice: the model
    // fell back to the CPU), in the order first named
    expect(loadConfig({ EXECUTION_PROVIDERS: 'webgpu, WEBGPU,cpu,webgpu' }).model.executionProviders).toEqual(
      ['webgpu', 'cpu'],
    );
    // the CPU first: onnxruntime gives it every node it runs, so nothing is a GPU's to warm
    expect(loadConfig({ EXECUTION_PROVIDERS: 'cpu,webgpu' }).model.warmUp).toBe(false);
    expect(loadConfig({ EXECUTION_PROVIDERS: 'cuda', ENGINE_WARMUP: 'off' }).model.warmUp).toBe(false);
    expect(problemsOf({ GPU_DEVICE_IDS: '0,1' })).toEqual([
      'GPU_DEVICE_IDS needs a GPU provider that takes a device number in EXECUTION_PROVIDERS (cuda, tensorrt, dml; webgpu always takes the first GPU) (got "0,1")',
    ]);
    expect(problemsOf({ EXECUTION_PROVIDERS: 'cuda', GPU_DEVICE_IDS: '0,0' })).toEqual([
      'GPU_DEVICE_IDS must be a comma list of distinct GPU numbers (e.g. 0,1) (got "0,0")',
    ]);
    expect(problemsOf({ EXECUTION_PROVIDERS: 'cuda', GPU_DEVICE_IDS: 'gpu1' })).toHaveLength(1);
  });

  it('refuses MODEL_CACHE_DIR equal to MODEL_DIR (an import there is a second model at the next start)', () => {
    const message =
      'MODEL_CACHE_DIR must not be MODEL_DIR: each import would land beside the checkpoint as a second model; use another folder (default data/model-cache)';
    expect(problemsOf({ MODEL_CACHE_DIR: 'models' })).toEqual([`${message} (got "models")`]);
    expect(problemsOf({ MODEL_DIR: '/srv/models/', MODEL_CACHE_DIR: '/srv/x/../models' })).toEqual([
      `${message} (got "/srv/x/../models")`,
    ]);
    // one level down is not scanned: a cache inside the models folder is fine
    expect(problemsOf({ MODEL_CACHE_DIR: 'models/cache' })).toEqual([]);
  });

  it('takes numbers in decimal only: ENGINE_WORKERS=0x2 is not 2', () => {
    expect(problemsOf({ ENGINE_WORKERS: '0x2' })).toEqual([
      'ENGINE_WORKERS must be a whole number from 1 to 16 (got "0x2")',
    ]);
    expect(problemsOf({ ENGINE_WORKERS: '2', MAX_STEPS: '1e2' })).toEqual([]);
  });

  it('reports every bad variable at once', () => {
    expect(problemsOf({ MAX_STEPS: 'many', LOG_LEVEL: 'loud', DISCORD_GUILD_ID: '42' })).toHaveLength(3);
  });

  it('never echoes a secret in a problem', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://root:hunter22@db/x' });
    expect(problems).toEqual(['DATABASE_URL must be a URL starting with postgres:// or postgresql://']);
  });

  it('a postgres:// URL that does not parse says why, not that it must start with postgres://', () => {
    const message =
      'DATABASE_URL does not read as a URL: write a # ? / or @ in the user name or password as %23 %3F %2F %40, and a port as 1 to 65535';
    for (const url of [
      'postgres://u:SECRET#pw@127.0.0.1:1/db',
      'postgresql://u:a?b@h/db',
      'postgres://u@h:99999/db',
    ])
      expect(problemsOf({ DATABASE_URL: url }), url).toEqual([message]);
    // written as the message says, each is taken
    expect(problemsOf({ DATABASE_URL: 'postgres://u:SECRET%23pw@127.0.0.1:1/db' })).toEqual([]);
    expect(problemsOf({ REDIS_URL: 'redis://:p#w@h:6379' })).toEqual([
      'REDIS_URL does not read as a URL: write a # ? / or @ in the user name or password as %23 %3F %2F %40, and a port as 1 to 65535',
    ]);
  });

  it('refuses an IPv6 address in DATABASE_URL, which the driver cannot connect to, without echoing the URL', () => {
    const message =
      'DATABASE_URL names an IPv6 address in brackets, which the PostgreSQL driver cannot connect to: use a host name for it (e.g. localhost) or an IPv4 address';
    for (const url of ['postgres://user@[::1]:5432/db', 'postgresql://u:pw-Secret@[fd00::5]/db'])
      expect(problemsOf({ DATABASE_URL: url }), url).toEqual([message]);
    expect(problemsOf({ DATABASE_URL: 'postgres://user@localhost:5432/db' })).toEqual([]);
  });

  it('never echoes a secret pasted into another variable, whole, inside a value or cut', () => {
    const token = 'MTA5ODc2NTQzMjEwOTg3NjU0.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB';
    const problems = problemsOf({
      DISCORD_TOKEN: token,
      DISCORD_GUILD_ID: token,
      DISCORD_APPLICATION_ID: ` ${token} `,
      LOG_LEVEL: token.slice(0, 24),
      DATABASE_URL: 'postgres://u:pg-Secret-1@h/db',
      REDIS_URL: 'redis://:redis%2Fpw@h:6379',
      PGLITE_DIR: 'x',
      MAX_STEPS: 'pg-Secret-1',
      ENSD: 'redis/pw',
      QUEUE_MAX: 'many',
    });
    expect(problems).toEqual([
      'DISCORD_APPLICATION_ID must be a Discord id (17 to 20 digits)',
      'DISCORD_GUILD_ID must be a Discord id (17 to 20 digits)',
      'LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent',
      'QUEUE_MAX must be a whole number from 1 to 10000 (got "many")',
      'MAX_STEPS must be a whole number from 1 to 150',
      'ENSD must be a whole number from 0 to 4294967295',
    ]);
  });

  it('never echoes a secret that a message repeats, in any case, and still shows values beside a short password', () => {
    const token = 'MTA5ODc2NTQzMjEwOTg3NjU0.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB';
    // EXECUTION_PROVIDERS names the unknown entries, lowercased, in its message
    expect(
      problemsOf({
        DATABASE_URL: 'postgres://bot:hunter2-db-password@h/db',
        EXECUTION_PROVIDERS: 'cpu,hunter2-db-password',
      }),
    ).toEqual([
      'EXECUTION_PROVIDERS must be a comma list of cpu, cuda, tensorrt, dml, coreml, webgpu (unknown: …)',
    ]);
    expect(problemsOf({ DISCORD_TOKEN: token, EXECUTION_PROVIDERS: `webgpu,${token}` })).toEqual([
      'EXECUTION_PROVIDERS must be a comma list of cpu, cuda, tensorrt, dml, coreml, webgpu (unknown: …)',
    ]);
    // a one-letter password is in most words: only the value that is all of it is hidden
    expect(
      problemsOf({ DATABASE_URL: 'postgres://postgres:a@h/db', QUEUE_MAX: 'many', MAX_STEPS: 'a' }),
    ).toEqual([
      'QUEUE_MAX must be a whole number from 1 to 10000 (got "many")',
      'MAX_STEPS must be a whole number from 1 to 150',
    ]);
  });

  it('names a URL whose password has a bare % (the drivers died with "URI malformed"), without echoing it', () => {
    const problems = problemsOf({
      DATABASE_URL: 'postgres://u:s3cr%zzet@h/db',
      REDIS_URL: 'redis://:pw%%x@h:6379',
    });
    expect(problems).toEqual([
      'DATABASE_URL has a % in its user name or password that is not %XX: write a % there as %25',
      'REDIS_URL has a % in its user name or password that is not %XX: write a % there as %25',
    ]);
    expect(problems.join('\n')).not.toMatch(/s3cr|pw%/);
  });

  it('lists the token and connection-string passwords as secrets', () => {
    const c = loadConfig({
      DISCORD_TOKEN: 'tok.en.value',
      DATABASE_URL: 'postgres://u:p%40ss@h/db',
      REDIS_URL: 'redis://:redispw@h:6379',
    });
    expect(secretsOf(c)).toEqual(expect.arrayContaining(['tok.en.value', 'p%40ss', 'p@ss', 'redispw']));
  });
});

describe('.env.example', () => {
  const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
  const lines = text.split('\n');

  it('lists every variable the bot reads, each with a comment line above it', () => {
    for (const name of CONFIG_VARIABLES) {
      const at = lines.findIndex((l) => l.startsWith(`${name}=`));
      expect(at, `${name} missing from .env.example`).toBeGreaterThan(0);
      expect(lines[at - 1]?.startsWith('#'), `${name} has no comment`).toBe(true);
    }
  });

  it('lists nothing the bot does not read, and its defaults load cleanly', () => {
    const listed = lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0] ?? '');
    expect(listed.sort()).toEqual([...CONFIG_VARIABLES].sort());
    const env = Object.fromEntries(lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=', 2)));
    expect(() => loadConfig(env)).not.toThrow();
  });
});

it('refuses a number of 200,000 digits with junk after it at once (the first pattern split the digits every way)', () => {
  const raw = `${'1'.repeat(200_000)}x`;
  expect(problemsOf({ QUEUE_MAX: raw })).toHaveLength(1);
  expect(problemsOf({ QUEUE_MAX: '12', ENSD: '1.', MAX_STEPS: '1e2' })).toEqual([]);
});
