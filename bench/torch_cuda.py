"""The GPU column of the side by side: ldm's SD 1.5 UNet (the code A1111 runs, with its default
SDPA attention) in PyTorch on CUDA, batch 2 (CFG), per dtype and latent shape: the first runs
(cold: cuDNN's algorithm search, allocator growth) and the median of the warm ones, timed with
CUDA synchronisation. Random weights of sane scale: a UNet step's time does not depend on them.
One JSON object on stdout, progress on stderr. For a GPU host; `--device cpu` runs it anywhere.

  python3 bench/torch_cuda.py [--ldm DIR] [--latents 64,128] [--dtypes fp16,fp32]
      [--cold 3] [--steps 10] [--device cuda] [--checkpoint FILE]

With --checkpoint the UNet takes that A1111 checkpoint's weights (the bench's random SD 1.5), and
each dtype's output for fixed inputs is compared with the same UNet in float32 on the CPU: the
measure bench/gpu.ts takes of our engine (the same inputs), so the two errors compare.
"""
import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from ldm_env import ldm_unet_or_skip, logger, sd15_unet, use_sdpa_attention  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--ldm')
p.add_argument('--latents', default='64,128')
p.add_argument('--dtypes', default='fp16,fp32')
p.add_argument('--cold', type=int, default=3, help='first runs per shape, reported one by one')
p.add_argument('--steps', type=int, default=10, help='warm runs per shape after the cold ones')
p.add_argument('--device', default='cuda')
p.add_argument('--checkpoint', help="the UNet's weights from this A1111 .safetensors checkpoint")
a = p.parse_args()
if a.steps < 1 or a.cold < 0:
    p.error('--steps must be at least 1 and --cold at least 0')
log = logger('torch_cuda')
UNetModel = ldm_unet_or_skip(a.ldm)
import torch  # noqa: E402

if a.device == 'cuda' and not torch.cuda.is_available():
    print(json.dumps({'skipped': 'torch sees no CUDA device'}))
    sys.exit(0)
torch.set_grad_enabled(False)
use_sdpa_attention()
dev = torch.device(a.device)
DTYPES = {'fp16': torch.float16, 'fp32': torch.float32, 'bf16': torch.bfloat16}


def autocast(dname):
    """A1111 runs a half-precision UNet under autocast (devices.autocast): ldm's timestep embedding
    is float32 and meets fp16 weights."""
    if dname == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype=DTYPES[dname])


def sync():
    if dev.type == 'cuda':
        torch.cuda.synchronize()


unet = sd15_unet(UNetModel)
if a.checkpoint:
    from safetensors.torch import load_file
    pre = 'model.diffusion_model.'
    unet.load_state_dict({k[len(pre):]: v.float() for k, v in load_file(a.checkpoint).items() if k.startswith(pre)})
else:
    gen = torch.Generator().manual_seed(1234)
    for name, t in unet.named_parameters():
        if t.ndim >= 2:
            t.copy_(torch.randn(t.shape, generator=gen) / math.sqrt(t[0].numel()))
# each dtype starts from these float32 weights (a half round trip would round the fp32 run's)
weights = {k: v.clone() for k, v in unet.state_dict().items()}


def wave(n, f, amp):
    """bench/gpu.ts's fixed inputs: sin(k·f)·amp in float64, stored as float32."""
    return (torch.sin(torch.arange(n, dtype=torch.float64) * f) * amp).float()


ax = wave(2 * 4 * 64 * 64, 0.37, 1).reshape(2, 4, 64, 64)
at = torch.tensor([500.0, 500.0])
ac = wave(2 * 77 * 768, 0.011, 1).reshape(2, 77, 768)
reference = unet(ax, at, context=ac) if a.checkpoint else None


def accuracy(model, dname):
    """‖out − cpu fp32‖ / ‖cpu fp32‖ and max |Δ| for the fixed inputs."""
    with autocast(dname):
        out = model(ax.to(dev, DTYPES[dname]), at.to(dev), context=ac.to(dev, DTYPES[dname]))
    d = out.float().cpu() - reference
    return {'relL2': float(d.norm() / reference.norm()), 'maxAbs': float(d.abs().max())}

result = {'device': torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'cpu', 'torch': torch.__version__,
          'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version() if dev.type == 'cuda' else None,
          'attention': 'sdpa (A1111 default on torch 2)', 'batch': 2, 'runs': {}}
def time_shapes(model, dname):
    out = {}
    for hw in [int(s) for s in a.latents.split(',') if s]:
        g = torch.Generator().manual_seed(hw)
        x = torch.randn(2, 4, hw, hw, generator=g).to(dev, DTYPES[dname])
        t = torch.tensor([961.5, 961.5], device=dev)
        c = torch.randn(2, 77, 768, generator=g).to(dev, DTYPES[dname])
        if dev.type == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(a.cold + a.steps):
            log(f'{dname} {hw}x{hw}: run {i + 1}/{a.cold + a.steps}')
            sync()
            t0 = time.perf_counter()
            with autocast(dname):
                model(x, t, context=c)
            sync()
            times.append((time.perf_counter() - t0) * 1000)
        warm = times[a.cold:]
        out[str(hw)] = {
            'coldMs': [round(v, 2) for v in times[:a.cold]],
            'stepMs': round(statistics.median(warm), 3),
            'minMs': round(min(warm), 3),
            'peakMemMiB': round(torch.cuda.max_memory_allocated() / 2**20) if dev.type == 'cuda' else None,
        }
    return out


for dname in [d for d in a.dtypes.split(',') if d]:
    unet.to('cpu', torch.float32).load_state_dict(weights)
    try:
        # A1111: weights in half precision, run under autocast
        model = unet.to(dev, DTYPES[dname])
        result['runs'][dname] = {'weights': dname, 'shapes': time_shapes(model, dname)}
    except RuntimeError as err:
        log(f'{dname} weights failed ({err}); fp32 weights under {dname} autocast instead')
        model = unet.to('cpu', torch.float32)
        model.load_state_dict(weights)
        model = model.to(dev)
        result['runs'][dname] = {'weights': 'fp32', 'error': str(err)[:200], 'shapes': time_shapes(model, dname)}
    if reference is not None:
        result['runs'][dname]['accuracy'] = accuracy(model, dname)
print(json.dumps(result))
