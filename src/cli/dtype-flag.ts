import type { Precision } from '../checkpoint/onnx-net.ts';
import { UsageError } from './usage-error.ts';

/** `--dtype` as given to the CLI or the importer: fp32 or fp16 in any case, as MODEL_DTYPE takes it. */
export function dtypeFlag(raw: string | undefined): Precision | undefined {
  const dtype = raw?.toLowerCase();
  if (dtype === undefined || dtype === 'fp32' || dtype === 'fp16') return dtype;
  throw new UsageError(`--dtype must be fp32 or fp16 (got "${raw}")`);
}
