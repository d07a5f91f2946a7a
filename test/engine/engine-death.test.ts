// A worker thread that dies fails every call at once, and the pool starts a new engine for the next
// job. The death here is Engine.kill, which ends the thread between two onnxruntime calls; an
// uncaught error in the worker or its running out of memory end it with the same 'exit' event.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import { Engine, EngineError, type EngineLog, type EngineSettings } from '../../src/engine/engine.ts';
import { EnginePool } from '../../src/engine/engine-pool.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const root = mkdtempSync(path.join(tmpdir(), 'hiresbot-engine-death-'));
const settings: EngineSettings = {
  modelDir: path.join(root, 'tiny'),
  executionProviders: ['cpu'],
  previewEvery: 0,
  timestepRounding: 'fp16',
};
beforeAll(() => writeTinyModel(settings.modelDir, { layout: 'diffusers' }));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const request = (steps: number): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt: 'a fox',
  seed: 3,
  width: 64,
  height: 64,
  steps,
});

function recordingLog(): EngineLog & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`info: ${m}`), warn: (m) => lines.push(`warn: ${m}`) };
}

describe('Engine whose worker dies', () => {
  it('fails the running and the queued call at once, marks itself dead and says why', async () => {
    const log = recordingLog();
    const engine = await Engine.start(settings, log);
    let steps = 0;
    const running = engine.generate(request(150), {
      onProgress: () => {
        if (++steps === 2) void engine.kill();
      },
    });
    const queued = engine.generate(request(2));
    const crashed = { kind: 'crashed', message: 'engine worker was killed' };
    await expect(running).rejects.toMatchObject(crashed);
    await expect(queued).rejects.toMatchObject(crashed);
    // rejected by the worker's exit, not by finishing or timing out: 150 + 150 steps were asked for
    expect(steps).toBeLessThan(150);
    expect(engine.alive).toBe(false);
    await expect(engine.died).resolves.toMatchObject(crashed);
    expect(log.lines).toContain('warn: engine worker was killed');
    const later = await engine.generate(request(2)).catch((e: unknown) => e as EngineError);
    expect(later).toBeInstanceOf(EngineError);
    expect(later).toMatchObject(crashed);
    expect((later as EngineError).cause).toMatchObject(crashed);
  });

  it('closed on purpose it is not a death: `died` never settles and calls fail as closed', async () => {
    const engine = await Engine.start(settings);
    await engine.close();
    const outcome = await Promise.race([engine.died.then(() => 'died'), Promise.resolve('not died')]);
    expect(outcome).toBe('not died');
    expect(engine.alive).toBe(false);
    await expect(engine.generate(request(2))).rejects.toMatchObject({ kind: 'closed' });
  });
});

describe('EnginePool', () => {
  /** A pool whose engines, replacements included, the test can reach. */
  async function poolOf(size: number) {
    const engines: Engine[] = [];
    const log = recordingLog();
    const pool = await EnginePool.start(size, settings, log, {
      startEngine: async (s, l) => {
        const engine = await Engine.start(s, l);
        engines.push(engine);
        return engine;
      },
    });
    return { pool, engines, log };
  }

  it('starts a new engine when one dies mid-job, and the next job runs on it', async () => {
    const { pool, engines, log } = await poolOf(1);
    try {
      expect(pool.size).toBe(1);
      const job = pool.generate(request(150), {
        onProgress: (e) => {
          if (e.step === 1) void engines[0]?.kill();
        },
      });
      await expect(job).rejects.toMatchObject({ kind: 'crashed' });
      const next = await pool.generate(request(2));
      expect(next.upscaled.map((u) => u.denoise)).toEqual([0.7]);
      expect(engines).toHaveLength(2);
      expect(engines.map((e) => e.alive)).toEqual([false, true]);
      expect(log.lines).toContain('warn: engine 1 of 1 died (engine worker was killed); starting a new one');
      expect(log.lines).toContain('info: engine 1 of 1 restarted');
    } finally {
      await pool.close();
    }
  });

  it('gives engine i GPU_DEVICE_IDS[i], and a replacement the device of the engine it replaces', async () => {
    const asked: (number | undefined)[] = [];
    const engines = new Map<number | undefined, Engine>();
    const pool = await EnginePool.start(2, settings, undefined, {
      deviceIds: [3, 1],
      startEngine: async (s, l) => {
        asked.push(s.deviceId);
        // the cpu provider takes no device number: the engines load as usual
        const engine = await Engine.start(s, l);
        engines.set(s.deviceId, engine);
        return engine;
      },
    });
    try {
      expect(asked).toEqual([3, 1]);
      const second = engines.get(1) as Engine;
      await second.kill();
      const deadline = Date.now() + 30_000;
      while (asked.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(asked[2]).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('never hands a job to a dead engine while a live one is idle', async () => {
    const { pool, engines } = await poolOf(2);
    try {
      const [first, second] = engines as [Engine, Engine];
      await first.kill();
      // the least busy engine is the dead one (both idle, it comes first): it must be passed over
      const result = await pool.generate(request(2));
      expect(result.base.width).toBe(64);
      expect(second.alive).toBe(true);
    } finally {
      await pool.close();
    }
  });
});
