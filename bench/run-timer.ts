// Time spent inside onnxruntime's run(), per session: what is left of a wall-clock time once
// this is taken away is ours (tensor creation, fp16 conversion, CFG combine, sampler, copies).
import type * as ort from 'onnxruntime-node';

export interface RunTimer {
  /** Milliseconds inside run() so far, all wrapped sessions together. */
  readonly ms: number;
  readonly calls: number;
}

/** Replaces each session's run() with one that adds its duration to the returned timer. */
export function timeRuns(sessions: ort.InferenceSession[]): RunTimer {
  const timer = { ms: 0, calls: 0 };
  for (const session of sessions) {
    const run = session.run.bind(session) as (...args: unknown[]) => Promise<ort.InferenceSession.ReturnType>;
    (session as { run: unknown }).run = async (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        return await run(...args);
      } finally {
        timer.ms += performance.now() - t0;
        timer.calls++;
      }
    };
  }
  return timer;
}
