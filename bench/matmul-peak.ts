// This CPU's ceiling as onnxruntime reaches it: one large float32 MatMul (the GEMM kernel every
// convolution, linear layer and attention product of the UNet comes down to), timed with the
// model's thread count. A UNet step's GFLOP over its time, against this, says how much of the
// step is left for a better graph to win.
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/diffusion/model/onnx-graph.ts';

export interface MatmulPeak {
  /** The side of the square matrices. */
  n: number;
  threads: number;
  /** The fastest of the timed runs. */
  gflops: number;
}

export async function measureMatmulPeak(threads: number, n = 2048, runs = 5): Promise<MatmulPeak> {
  const g = new GraphBuilder();
  g.input('a', 'float32', [n, n]);
  g.input('b', 'float32', [n, n]);
  g.op('MatMul', ['a', 'b'], {}, 'c');
  g.output('c', 'float32', [n, n]);
  const session = await ort.InferenceSession.create(g.encode('matmul-peak'), {
    intraOpNumThreads: threads,
    executionProviders: ['cpu'],
  });
  try {
    const values = Float32Array.from({ length: n * n }, (_, k) => Math.sin(k) * 0.5);
    const feeds = {
      a: new ort.Tensor('float32', values, [n, n]),
      b: new ort.Tensor('float32', values, [n, n]),
    };
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i <= runs; i++) {
      const t = performance.now();
      await session.run(feeds);
      // the first run packs and allocates: not timed
      if (i > 0) best = Math.min(best, performance.now() - t);
    }
    return { n, threads, gflops: (2 * n ** 3) / (best / 1000) / 1e9 };
  } finally {
    await session.release();
  }
}
