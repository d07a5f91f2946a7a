// Time spent inside onnxruntime's run(), per session: what is left of a wall-clock time once
// this is taken away is ours (tensor creation, fp16 conversion, CFG combine, sampler, copies).
import type * as ort from 'onnxruntime-node';

export interface RunTimer {
  /** Milliseconds inside run() so far, all wrapped sessions together. */
  readonly ms: number;
  readonly calls: number;
  /** When each run() began and ended (performance.now()), in call order. */
  readonly spans: { start: number; end: number }[];
}

/** Replaces each session's run() with one that adds its duration to the returned timer. */
export function timeRuns(sessions: ort.InferenceSession[]): RunTimer {
  const timer = { ms: 0, calls: 0, spans: [] as { start: number; end: number }[] };
  for (const session of sessions) {
    const run = session.run.bind(session) as (...args: unknown[]) => Promise<ort.InferenceSession.ReturnType>;
    (session as { run: unknown }).run = async (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        return await run(...args);
      } finally {
        const t1 = performance.now();
        timer.ms += t1 - t0;
        timer.calls++;
        timer.spans.push({ start: t0, end: t1 });
      }
    };
  }
  return timer;
}
