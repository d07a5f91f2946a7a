// The worker thread: owns the onnxruntime sessions (whose run() blocks the thread it runs on)
// and runs one job at a time, reporting progress and results to the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { type ModelIdentity, modelIdentity } from '../diffusion/model/model-identity.ts';
import { loadSdModel } from '../diffusion/model/sd-model.ts';
import { CancelledError, Pipeline, type ProgressEvent } from '../diffusion/pipeline.ts';
import { RequestError } from '../diffusion/request-error.ts';
import { warmUp } from '../diffusion/warm-up.ts';
import type { EngineSettings, ErrorKind, FromWorker, ToWorker, WireError } from './protocol.ts';

if (!parentPort) throw new Error('engine host must run in a worker thread');
const port = parentPort;
const settings = workerData as EngineSettings;
const send = (msg: FromWorker) => port.postMessage(msg);

const running = new Map<number, AbortController>();

/** What of an error survives the thread boundary: its name, message, stack and blamed option. */
function toWire(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  return {
    name: err.name,
    message: err.message,
    ...(err.stack ? { stack: err.stack } : {}),
    ...(err instanceof RequestError ? { option: err.option } : {}),
  };
}

function kindOf(err: unknown): ErrorKind {
  if (err instanceof CancelledError) return 'cancelled';
  return err instanceof RequestError ? 'request' : 'internal';
}

async function main() {
  let pipeline: Pipeline;
  let info: ModelIdentity;
  try {
    const model = await loadSdModel(settings.modelDir, {
      executionProviders: settings.executionProviders,
      intraOpThreads: settings.intraOpThreads,
      deviceId: settings.deviceId,
      optimizedDir: settings.optimizedDir,
      log: {
        info: (message) => send({ type: 'log', level: 'info', message }),
        warn: (message) => send({ type: 'log', level: 'warn', message }),
      },
    });
    info = await modelIdentity(model.dir, model.source, model.unet.weightsFile);
    pipeline = new Pipeline(model, {
      modelHash: info.hash,
      vae: info.vae,
      previewEvery: settings.previewEvery,
      timestepRounding: settings.timestepRounding,
    });
    send({ type: 'ready', model: { ...info, executionProviders: model.executionProviders } });
  } catch (err) {
    send({ type: 'load-failed', error: toWire(err) });
    return;
  }

  // Jobs run strictly one after another; a cancel for a running job arrives between steps.
  let queue = Promise.resolve();
  let closing = false;
  // a warm-up is for a GPU's first runs; after a fall-back to the CPU it would only hold the first
  // job back (a 1024 step takes minutes there)
  const fellBack =
    settings.executionProviders.some((p) => p !== 'cpu') &&
    pipeline.model.executionProviders.every((p) => p === 'cpu');
  const shapes = fellBack ? [] : (settings.warmUp ?? []);
  if (fellBack && settings.warmUp?.length) {
    send({ type: 'log', level: 'info', message: 'no warm-up: the model fell back to the CPU' });
  }
  if (shapes.length > 0) {
    // first in the queue: the main thread answers meanwhile, and a job sent now runs right after
    queue = warmUp(pipeline, shapes, () => closing).then(
      ({ ms, stopped }) => {
        const what = shapes.map((s) => `${s.width * 8}×${s.height * 8}`).join(' and ');
        if (!stopped)
          send({
            type: 'log',
            level: 'info',
            message: `warmed up at ${what} in ${(ms / 1000).toFixed(1)} s`,
          });
      },
      (err: unknown) =>
        send({
          type: 'log',
          level: 'warn',
          message: `warm-up failed (jobs still run): ${toWire(err).message}`,
        }),
    );
  }
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'cancel') {
      running.get(msg.id)?.abort();
      return;
    }
    if (msg.type === 'exit') {
      // messages are handled between onnxruntime calls, never inside one: a safe point to stop
      process.exit(1);
    }
    if (msg.type === 'close') {
      // what is running stops at its next step, what is queued at once; then the sessions go
      closing = true;
      for (const controller of running.values()) controller.abort();
      void queue.then(async () => {
        await pipeline.model.release();
        port.close();
      });
      return;
    }
    const controller = new AbortController();
    running.set(msg.id, controller);
    queue = queue.then(() => runJob(pipeline, msg, controller.signal)).finally(() => running.delete(msg.id));
  });
}

async function runJob(
  pipeline: Pipeline,
  msg: Extract<ToWorker, { type: 'generate' | 'upscale' }>,
  signal: AbortSignal,
) {
  const run = { signal, onProgress: (event: ProgressEvent) => send({ type: 'progress', id: msg.id, event }) };
  try {
    if (msg.type === 'generate') {
      const result = await pipeline.generate(msg.request, { ...run, denoises: msg.denoises });
      send({ type: 'generated', id: msg.id, result });
    } else {
      const result = await pipeline.upscale(msg.request, msg.latent, { ...run, denoises: msg.denoises });
      send({ type: 'upscaled', id: msg.id, result });
    }
  } catch (err) {
    send({ type: 'failed', id: msg.id, kind: kindOf(err), error: toWire(err) });
  }
}

void main();
