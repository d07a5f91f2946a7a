// The comparison with the code A1111 runs: bench/torch_side.py (ldm's UNet in PyTorch, and its
// torch.onnx.export run by onnxruntime's Python API), then our engine on that exported UNet.
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { progress } from './progress.ts';

export interface TorchSide {
  skipped?: string;
  threads?: number;
  torch?: string;
  ortVersion?: string;
  attention?: string;
  /** Seconds per step, in order (the last is the timed, warm one), by latent side. */
  pytorch?: Record<string, number[]>;
  ort?: Record<string, number[]>;
  exportS?: number;
  ortLoadS?: number;
}

/** PyTorch on a GPU (bench/torch_cuda.py): per dtype and latent side, cold runs and the warm median. */
export interface TorchCuda {
  skipped?: string;
  device?: string;
  torch?: string;
  cuda?: string;
  /** By dtype: the weights' dtype (fp32 under autocast where half weights failed), by latent side. */
  runs?: Record<
    string,
    {
      weights: string;
      shapes: Record<string, { coldMs: number[]; stepMs: number; peakMemMiB: number | null }>;
      /** With --checkpoint: the output for fixed inputs against the same UNet in fp32 on the CPU. */
      accuracy?: { relL2: number; maxAbs: number };
    }
  >;
}

/**
 * Runs one of the bench's Python scripts and returns the JSON object it prints last; a missing
 * python3 or package is a note (`skipped`), not a failure.
 */
function runPython<T extends { skipped?: string }>(
  what: string,
  script: string,
  args: string[],
  modules: string[],
): T {
  const probe = spawnSync('python3', ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error
      ? 'python3 not found'
      : (probe.stderr.trim().split('\n').pop() ?? 'import failed');
    return {
      skipped: `${what} skipped: ${why} (needs python3 with ${modules.join(', ')})`,
    } as T;
  }
  progress(`${what} (bench/${script}; see its progress below)`);
  const run = spawnSync('python3', [path.join(import.meta.dirname, script), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) return { skipped: `${what} failed (exit ${run.status}); see its output above` } as T;
  return JSON.parse(run.stdout.trim().split('\n').pop() as string) as T;
}

/** The side by side on the CPU: PyTorch (ldm) and onnxruntime-python on its torch export. */
export function runTorchSide(o: {
  checkpoint: string;
  exportDir: string;
  threads: number;
  latents: number[];
  ortLatents: number[];
  steps: number;
  /** onnxruntime-python's steps: it settles after two. */
  ortSteps: number;
  reuseExport: boolean;
}): TorchSide {
  return runPython<TorchSide>(
    'side by side: PyTorch and onnxruntime-python',
    'torch_side.py',
    [
      '--checkpoint',
      o.checkpoint,
      '--export-dir',
      o.exportDir,
      '--threads',
      String(o.threads),
      '--latents',
      o.latents.join(','),
      '--ort-latents',
      o.ortLatents.join(','),
      '--steps',
      String(o.steps),
      '--ort-steps',
      String(o.ortSteps),
      ...(o.reuseExport && existsSync(path.join(o.exportDir, 'unet', 'model.onnx')) ? ['--no-export'] : []),
    ],
    ['torch', 'onnxruntime', 'safetensors', 'einops'],
  );
}

/** The GPU column: ldm's UNet in PyTorch on CUDA, fp16 and fp32; a note where torch sees no GPU. */
export function runTorchCuda(args: string[] = []): TorchCuda {
  // ldm's UNet needs einops; safetensors only to read --checkpoint's weights
  const modules = ['torch', 'einops', ...(args.includes('--checkpoint') ? ['safetensors'] : [])];
  return runPython<TorchCuda>('PyTorch on the GPU', 'torch_cuda.py', args, modules);
}

/**
 * A model folder our loader reads, with the torch-exported UNet and every other part (CLIP, VAE,
 * tokenizer) from our import, hard-linked (the loader wants regular files). The import's
 * checkpoint.json is left out: this folder is not that import.
 */
export function torchExportFolder(imported: string, exportDir: string): string {
  for (const entry of readdirSync(imported)) {
    if (entry === 'unet' || entry === 'checkpoint.json') continue;
    linkTree(path.join(imported, entry), path.join(exportDir, entry));
  }
  return exportDir;
}

function linkTree(from: string, to: string): void {
  if (statSync(from).isDirectory()) {
    mkdirSync(to, { recursive: true });
    for (const e of readdirSync(from)) linkTree(path.join(from, e), path.join(to, e));
  } else if (!existsSync(to)) {
    linkSync(from, to);
  }
}
