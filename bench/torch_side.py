"""The bench's side-by-side: the same UNet weights (1) through ldm's UNetModel, the code A1111 runs,
in PyTorch on the CPU, and (2) exported from that module by torch.onnx.export and run by
onnxruntime's Python API. Seconds per batch-2 UNet step at each latent shape, one JSON object on
stdout (progress on stderr). Attention is A1111's default on torch 2 (sd_hijack_optimizations.
scaled_dot_product_attention_forward): torch's SDPA in place of ldm's einsum/softmax.

  python3 bench/torch_side.py --checkpoint FILE --export-dir DIR [--ldm DIR] [--threads 2]
      [--latents 64,128] [--steps 2] [--ort-latents 64] [--ort-steps 4] [--no-torch] [--no-export]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from ldm_env import ldm_unet_or_skip, logger, sd15_unet, use_sdpa_attention  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--checkpoint', required=True)
p.add_argument('--export-dir', required=True, help='where the torch export goes (a model folder)')
p.add_argument('--ldm')
p.add_argument('--threads', type=int, default=2)
p.add_argument('--latents', default='64,128', help='latent sides for PyTorch')
p.add_argument('--ort-latents', default='64', help='latent sides for onnxruntime on the export')
p.add_argument('--steps', type=int, default=2, help='steps per shape; the last one is the timed one')
# onnxruntime on the export settles only after its first two runs (24 s each, then 11 s, measured
# here): a third and fourth show its steady step
p.add_argument('--ort-steps', type=int, default=4, help='steps per shape for onnxruntime on the export')
p.add_argument('--no-torch', action='store_true')
p.add_argument('--no-export', action='store_true', help='reuse an export already in --export-dir')
a = p.parse_args()
log = logger('torch_side')
UNetModel = ldm_unet_or_skip(a.ldm)
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402

torch.set_num_threads(a.threads)
torch.set_grad_enabled(False)


use_sdpa_attention()

unet = sd15_unet(UNetModel)
prefix = 'model.diffusion_model.'
with safe_open(a.checkpoint, 'pt') as f:
    sd = {k[len(prefix):]: f.get_tensor(k).float() for k in f.keys() if k.startswith(prefix)}
unet.load_state_dict(sd, strict=True)
del sd
unet.eval()


def inputs(hw):
    g = torch.Generator().manual_seed(hw)
    x = torch.randn(2, 4, hw, hw, generator=g)
    t = torch.tensor([961.5, 961.5])
    c = torch.randn(2, 77, 768, generator=g)
    return x, t, c


def timed(fn, steps, what):
    out = []
    for i in range(steps):
        log(f'{what}: step {i + 1}/{steps}')
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


result = {'threads': a.threads, 'torch': torch.__version__, 'attention': 'sdpa (A1111 default on torch 2)'}
latents = [int(s) for s in a.latents.split(',') if s]
if not a.no_torch:
    result['pytorch'] = {}
    for hw in latents:
        x, t, c = inputs(hw)
        result['pytorch'][str(hw)] = timed(lambda: unet(x, t, context=c), a.steps, f'pytorch {hw}x{hw}')

unet_dir = os.path.join(a.export_dir, 'unet')
onnx_file = os.path.join(unet_dir, 'model.onnx')
if not a.no_export:
    import onnx

    os.makedirs(unet_dir, exist_ok=True)
    log('torch.onnx.export (TorchScript exporter, opset 17)')
    t0 = time.perf_counter()
    tmp = os.path.join(unet_dir, 'export-tmp.onnx')
    torch.onnx.export(unet, inputs(64), tmp, dynamo=False, opset_version=17,
                      input_names=['sample', 'timestep', 'encoder_hidden_states'], output_names=['out_sample'],
                      dynamic_axes={'sample': {0: 'batch', 2: 'height', 3: 'width'}, 'timestep': {0: 'steps'},
                                    'encoder_hidden_states': {0: 'batch', 1: 'sequence'}})
    model = onnx.load(tmp)
    for name in os.listdir(unet_dir):
        if name != 'model.onnx':
            os.remove(os.path.join(unet_dir, name))
    onnx.save_model(model, onnx_file, save_as_external_data=True, all_tensors_to_one_file=True,
                    location='weights.pb', size_threshold=1024)
    del model
    result['exportS'] = time.perf_counter() - t0

ort_latents = [int(s) for s in a.ort_latents.split(',') if s]
if ort_latents:
    del unet
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    log('onnxruntime: creating the session')
    t0 = time.perf_counter()
    sess = ort.InferenceSession(onnx_file, so, providers=['CPUExecutionProvider'])
    result['ortLoadS'] = time.perf_counter() - t0
    result['ortVersion'] = ort.__version__
    result['ort'] = {}
    for hw in ort_latents:
        x, t, c = inputs(hw)
        feeds = {'sample': x.numpy(), 'timestep': t.numpy(), 'encoder_hidden_states': c.numpy()}
        result['ort'][str(hw)] = timed(lambda: sess.run(None, feeds), a.ort_steps, f'onnxruntime {hw}x{hw}')
print(json.dumps(result))
