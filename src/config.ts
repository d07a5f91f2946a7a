// Every setting of the bot, read once from the environment (and `.env`), validated, typed.
// Nothing here runs at import time: callers pass the environment they want read.

import path from 'node:path';
import { z } from 'zod';
import { problemLine } from './config-secrets.ts';
import { decimal } from './decimal.ts';
import {
  DEVICE_PROVIDERS,
  EXECUTION_PROVIDERS,
  type ExecutionProvider,
  GPU_PROVIDERS,
  inGroup,
} from './providers.ts';

function numericVar(min: number, max: number, fallback: number, whole: boolean) {
  return z
    .string()
    .trim()
    .default(String(fallback))
    .transform((raw, ctx) => {
      const n = decimal(raw);
      if (n === undefined || (whole && !Number.isInteger(n)) || n < min || n > max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a ${whole ? 'whole number' : 'number'} from ${min} to ${max}`,
        });
        return z.NEVER;
      }
      return n;
    });
}

const intVar = (min: number, max: number, fallback: number) => numericVar(min, max, fallback, true);
const numberVar = (min: number, max: number, fallback: number) => numericVar(min, max, fallback, false);

function enumVar<const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) {
  return z
    .string()
    .trim()
    .default(fallback)
    .transform((raw, ctx) => {
      const v = raw.toLowerCase();
      if (!(values as readonly string[]).includes(v)) {
        ctx.addIssue({ code: 'custom', message: `must be one of ${values.join(', ')}` });
        return z.NEVER;
      }
      return v as T[number];
    });
}

const optionalString = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

const snowflake = optionalString.refine((v) => v === undefined || /^\d{17,20}$/.test(v), {
  message: 'must be a Discord id (17 to 20 digits)',
});

/** Whether the URL's user name and password decode (the drivers decode them, and die if not). */
function credentialsDecode(url: string): boolean {
  try {
    const u = new URL(url);
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
    return true;
  } catch (err) {
    return !(err instanceof URIError); // not a URL at all is the other check's to say
  }
}

function urlVar(protocols: string[]) {
  const starts = protocols.map((p) => `${p}//`);
  return optionalString
    .superRefine((v, ctx) => {
      if (v === undefined) return;
      let protocol: string | undefined;
      try {
        protocol = new URL(v).protocol;
      } catch {
        // the right scheme, yet no URL: a password's own #, ? or / ends the host early
        if (starts.some((s) => v.toLowerCase().startsWith(s))) {
          ctx.addIssue({
            code: 'custom',
            message:
              'does not read as a URL: write a # ? / or @ in the user name or password as %23 %3F %2F %40, and a port as 1 to 65535',
          });
          return;
        }
      }
      if (protocol === undefined || !protocols.includes(protocol))
        ctx.addIssue({ code: 'custom', message: `must be a URL starting with ${starts.join(' or ')}` });
    })
    .refine((v) => v === undefined || credentialsDecode(v), {
      message: 'has a % in its user name or password that is not %XX: write a % there as %25',
    });
}

/** Whether the URL's host is an IPv6 literal (`[::1]`): postgres-js splits it at its colons. */
function namesIpv6(url: string): boolean {
  try {
    return new URL(url).hostname.startsWith('[');
  } catch {
    return false; // not a URL at all is the other check's to say
  }
}

/** More shards than a bot in 25 million servers needs: a bound before any process is started. */
export const MAX_SHARDS = 10_000;

/**
 * Empty = one gateway connection in this process; `auto` = the count Discord recommends. Not named
 * SHARD_COUNT: discord.js's Client reads that (and SHARDS) from the environment by itself.
 */
const shardsVar = optionalString.transform((raw, ctx) => {
  if (raw === undefined || raw.toLowerCase() === 'auto') return raw?.toLowerCase() as 'auto' | undefined;
  // digits only: Number() would also take 1e3 or 0x10
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARDS) {
    ctx.addIssue({ code: 'custom', message: `must be auto or a whole number from 1 to ${MAX_SHARDS}` });
    return z.NEVER;
  }
  return n;
});

/** EXECUTION_PROVIDERS' rules (a comma list of known names, any case, each kept once), for the bench's --providers too. */
export const executionProviderList = z
  .string()
  .trim()
  .default('cpu')
  .transform((raw, ctx) => {
    const list = raw
      .split(',')
      .map((p) => p.trim().toLowerCase())
      .filter(Boolean);
    const bad = list.filter((p) => !inGroup(EXECUTION_PROVIDERS, p));
    if (list.length === 0 || bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `must be a comma list of ${EXECUTION_PROVIDERS.join(', ')}${bad.length ? ` (unknown: ${bad.join(', ')})` : ''}`,
      });
      return z.NEVER;
    }
    // each once, in the order first named: onnxruntime refuses a provider registered twice, and
    // the model would fall back to the CPU
    return [...new Set(list)] as ExecutionProvider[];
  });

const deviceIdList = z
  .string()
  .trim()
  .optional()
  .transform((raw, ctx) => {
    if (!raw) return undefined;
    const parts = raw.split(',').map((p) => p.trim());
    const ids = parts.map(Number);
    if (parts.some((p) => !/^\d{1,2}$/.test(p)) || new Set(ids).size !== ids.length) {
      ctx.addIssue({ code: 'custom', message: 'must be a comma list of distinct GPU numbers (e.g. 0,1)' });
      return z.NEVER;
    }
    return ids;
  });

const envFields = z.object({
  PROCESS_ROLE: enumVar(['all', 'gateway', 'worker'] as const, 'all'),
  DISCORD_TOKEN: optionalString,
  DISCORD_APPLICATION_ID: snowflake,
  DISCORD_GUILD_ID: snowflake,
  DISCORD_API_URL: urlVar(['http:', 'https:']),
  DISCORD_SHARDS: shardsVar,
  MODEL_DIR: z.string().trim().min(1).default('models'),
  MODEL_VAE: optionalString,
  MODEL_DTYPE: enumVar(['auto', 'fp32', 'fp16'] as const, 'auto'),
  MODEL_CACHE_DIR: z.string().trim().min(1).default('data/model-cache'),
  EXECUTION_PROVIDERS: executionProviderList,
  ENGINE_WORKERS: intVar(1, 16, 1),
  GPU_DEVICE_IDS: deviceIdList,
  ENGINE_WARMUP: enumVar(['auto', 'on', 'off'] as const, 'auto'),
  DATABASE_URL: urlVar(['postgres:', 'postgresql:']).refine((v) => v === undefined || !namesIpv6(v), {
    message:
      'names an IPv6 address in brackets, which the PostgreSQL driver cannot connect to: use a host name for it (e.g. localhost) or an IPv4 address',
  }),
  PGLITE_DIR: z.string().trim().min(1).default('data/pglite'),
  REDIS_URL: urlVar(['redis:', 'rediss:']),
  REDIS_PREFIX: z
    .string()
    .trim()
    .default('hiresbot')
    .refine((v) => /^[\w.-]{1,64}$/.test(v), { message: 'must be 1 to 64 letters, digits, _ . or -' }),
  LOG_LEVEL: enumVar(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info'),
  QUEUE_MAX: intVar(1, 10_000, 20),
  USER_MAX_JOBS: intVar(1, 100, 2),
  JOB_TIMEOUT_S: intVar(10, 86_400, 600),
  QUOTA_DAILY_UNITS: numberVar(0, 1_000_000, 50),
  QUOTA_RESET_HOUR_UTC: intVar(0, 23, 0),
  MAX_PROMPT_CHARS: intVar(1, 10_000, 1000),
  MAX_STEPS: intVar(1, 150, 50),
  MAX_BASE_SIDE: intVar(64, 4096, 768),
  MAX_HIRES_SIDE: intVar(64, 8192, 1536),
  RNG_SOURCE: enumVar(['nv', 'cpu'] as const, 'nv'),
  ENSD: intVar(0, 4_294_967_295, 0),
  PREVIEW_EVERY: intVar(0, 150, 5),
  LATENT_RETENTION_DAYS: intVar(1, 3650, 7),
});

// settings that must agree with each other
const envSchema = envFields.superRefine((e, ctx) => {
  if (e.GPU_DEVICE_IDS && !e.EXECUTION_PROVIDERS.some((p) => DEVICE_PROVIDERS.includes(p))) {
    ctx.addIssue({
      code: 'custom',
      path: ['GPU_DEVICE_IDS'],
      message: `needs a GPU provider that takes a device number in EXECUTION_PROVIDERS (${DEVICE_PROVIDERS.join(', ')}; webgpu always takes the first GPU)`,
    });
  }
  if (e.DISCORD_SHARDS !== undefined && !e.DATABASE_URL) {
    // every shard is a process of its own, and the embedded PGlite opens in one process only
    ctx.addIssue({
      code: 'custom',
      path: ['DISCORD_SHARDS'],
      message: 'needs DATABASE_URL: the shard processes share one PostgreSQL',
    });
  }
  if (path.resolve(e.MODEL_CACHE_DIR) === path.resolve(e.MODEL_DIR)) {
    // an import lands in MODEL_DIR beside the checkpoint, and the next start finds two models there
    // (a cache folder inside MODEL_DIR is fine: the model scan looks one level deep only)
    ctx.addIssue({
      code: 'custom',
      path: ['MODEL_CACHE_DIR'],
      message:
        'must not be MODEL_DIR: each import would land beside the checkpoint as a second model; use another folder (default data/model-cache)',
    });
  }
  if (e.DISCORD_SHARDS !== undefined && e.PROCESS_ROLE === 'worker') {
    // shards split the gateway connection, which a worker does not open
    ctx.addIssue({
      code: 'custom',
      path: ['DISCORD_SHARDS'],
      message: 'is for PROCESS_ROLE=gateway or all: a worker has no gateway connection',
    });
  }
});

export type ProcessRole = 'all' | 'gateway' | 'worker';

export interface Config {
  /** all: one process does everything; gateway: Discord and admission, no model; worker: jobs only. */
  role: ProcessRole;
  discord: {
    token: string | undefined;
    applicationId: string | undefined;
    guildId: string | undefined;
    apiUrl: string | undefined;
    /** Gateway shards, each a process under discord.js's ShardingManager; undefined = no manager. */
    shards: number | 'auto' | undefined;
  };
  model: {
    /** An ONNX folder, a .safetensors checkpoint, or a folder holding exactly one of either. */
    dir: string;
    executionProviders: ExecutionProvider[];
    /** Engines in this process: one per GPU id when `deviceIds` is set, else ENGINE_WORKERS. */
    workers: number;
    /** GPU_DEVICE_IDS: engine i runs on GPU deviceIds[i]; undefined = the provider's default device. */
    deviceIds: number[] | undefined;
    /** Warm each engine up at the default base and hires shapes at start (auto: on a GPU provider). */
    warmUp: boolean;
    /** An external VAE for a checkpoint (A1111's "SD VAE"). */
    vae: string | undefined;
    /** Precision of an imported checkpoint; auto = fp16 on cuda/tensorrt/dml, else fp32. */
    dtype: 'auto' | 'fp32' | 'fp16';
    /** Where checkpoints are imported to (once per file, VAE and precision). */
    cacheDir: string;
  };
  database: { url: string | undefined; pgliteDir: string };
  redisUrl: string | undefined;
  /** Key prefix in Redis: bots (or tests) sharing one Redis keep apart by it. */
  redisPrefix: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  queue: { max: number; perUser: number; jobTimeoutMs: number };
  /** Base latents (what 🔁 Re-upscale starts from) are kept this many days. */
  retention: { latentDays: number };
  quota: { dailyUnits: number; resetHourUtc: number };
  limits: { promptChars: number; steps: number; baseSide: number; hiresSide: number };
  generation: { rng: 'nv' | 'cpu'; ensd: number; previewEvery: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the settings; throws a ConfigError listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) =>
      problemLine(env, String(issue.path[0]), issue.message),
    );
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  return {
    role: e.PROCESS_ROLE,
    discord: {
      token: e.DISCORD_TOKEN,
      applicationId: e.DISCORD_APPLICATION_ID,
      guildId: e.DISCORD_GUILD_ID,
      apiUrl: e.DISCORD_API_URL,
      shards: e.DISCORD_SHARDS,
    },
    model: {
      dir: e.MODEL_DIR,
      executionProviders: e.EXECUTION_PROVIDERS,
      workers: e.GPU_DEVICE_IDS?.length ?? e.ENGINE_WORKERS,
      deviceIds: e.GPU_DEVICE_IDS,
      warmUp:
        e.ENGINE_WARMUP === 'on' ||
        // auto: when a GPU provider comes first (onnxruntime gives each node to the first that runs it)
        (e.ENGINE_WARMUP === 'auto' && inGroup(GPU_PROVIDERS, e.EXECUTION_PROVIDERS[0] ?? 'cpu')),
      vae: e.MODEL_VAE,
      dtype: e.MODEL_DTYPE,
      cacheDir: e.MODEL_CACHE_DIR,
    },
    database: { url: e.DATABASE_URL, pgliteDir: e.PGLITE_DIR },
    redisUrl: e.REDIS_URL,
    redisPrefix: e.REDIS_PREFIX,
    logLevel: e.LOG_LEVEL,
    queue: { max: e.QUEUE_MAX, perUser: e.USER_MAX_JOBS, jobTimeoutMs: e.JOB_TIMEOUT_S * 1000 },
    retention: { latentDays: e.LATENT_RETENTION_DAYS },
    quota: { dailyUnits: e.QUOTA_DAILY_UNITS, resetHourUtc: e.QUOTA_RESET_HOUR_UTC },
    limits: {
      promptChars: e.MAX_PROMPT_CHARS,
      steps: e.MAX_STEPS,
      baseSide: e.MAX_BASE_SIDE,
      hiresSide: e.MAX_HIRES_SIDE,
    },
    generation: { rng: e.RNG_SOURCE, ensd: e.ENSD, previewEvery: e.PREVIEW_EVERY },
  };
}

/** Names of every variable the bot reads (documented one by one in .env.example). */
export const CONFIG_VARIABLES = Object.keys(envFields.shape);
