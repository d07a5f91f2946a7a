// The job the bench times: 512×512 → 1024×1024 (64×64 → 128×128 latents), DPM++ 2M Karras,
// denoise 0.5, CFG 7 with an empty negative prompt (cond and uncond in one batch-2 UNet call).
import { DEFAULT_REQUEST, type GenerationRequest } from '../src/diffusion/request.ts';

export function benchRequest(over: Partial<GenerationRequest> = {}): GenerationRequest {
  return {
    ...DEFAULT_REQUEST,
    prompt: 'a lighthouse on a cliff at dusk, oil painting, dramatic clouds',
    seed: 1234,
    sampler: 'DPM++ 2M',
    scheduler: 'Karras',
    width: 512,
    height: 512,
    hiresScale: 2,
    denoise: 0.5,
    ...over,
  };
}
