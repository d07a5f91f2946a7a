"""The multiply-adds of one batch-2 step of ldm's SD 1.5 UNet (the module A1111 runs), counted by
hooks on its Conv2d and Linear modules and on SDPA (A1111's attention), on torch's meta device so
that nothing is computed, with A1111's resize before each skip concatenation. The reference for bench/unet-flops.ts's closed form (its test holds
these figures); prints JSON: GFLOP (2 per multiply-add) by kind, per latent shape (a side, or HxW).

  python3 bench/count_flops.py [--ldm DIR] [--latents 64,128,48x80,65]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from ldm_env import import_ldm, ldm_root, sd15_unet, use_sdpa_attention  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--ldm')
p.add_argument('--latents', default='64,128')
a = p.parse_args()
shapes = []
for shape in a.latents.split(','):
    height, _, width = shape.partition('x')
    if not (height.isdigit() and (width or height).isdigit()) or not 8 <= int(height) <= 512 \
            or not 8 <= int(width or height) <= 512:
        sys.exit(f'count_flops: --latents takes sides or HxW from 8 to 512 (got "{shape}")')
    shapes.append((shape, int(height), int(width or height)))
root = ldm_root(a.ldm)
if root is None:
    sys.exit('count_flops: no ldm/ found (pass --ldm or set LDM_DIR)')
UNetModel, _, _ = import_ldm(root)
use_sdpa_attention()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class CatResizing:
    """A1111's sd_hijack_unet.TorchHijackForUnet: ldm's UNet concatenates each upsampled map with
    its skip, which is a row or column smaller where a side halved to an odd number; A1111 resizes
    the upsampled one first (nearest), so every multiple-of-8 image size runs."""

    def __getattr__(self, item):
        return self.cat if item == 'cat' else getattr(torch, item)

    def cat(self, tensors, *args, **kwargs):
        if len(tensors) == 2 and tensors[0].shape[-2:] != tensors[1].shape[-2:]:
            tensors = (F.interpolate(tensors[0], tensors[1].shape[-2:], mode='nearest'), tensors[1])
        return torch.cat(tensors, *args, **kwargs)


sys.modules['ldm.modules.diffusionmodules.openaimodel'].th = CatResizing()

torch.set_grad_enabled(False)
with torch.device('meta'):
    unet = sd15_unet(UNetModel)
counts = {}


def add(kind, macs):
    counts[kind] = counts.get(kind, 0) + macs


def conv_hook(m, _inputs, out):
    k = m.kernel_size[0] * m.kernel_size[1]
    add('conv3x3' if k > 1 else 'conv1x1', out.numel() * (m.in_channels // m.groups) * k)


def linear_hook(m, _inputs, out):
    add('linear', out.numel() * m.in_features)


for mod in unet.modules():
    if isinstance(mod, torch.nn.Conv2d):
        mod.register_forward_hook(conv_hook)
    elif isinstance(mod, torch.nn.Linear):
        mod.register_forward_hook(linear_hook)
sdpa = F.scaled_dot_product_attention


def counted_sdpa(q, k, v, *args, **kwargs):
    b, h, n, d = q.shape
    add('attention', 2 * b * h * n * k.shape[2] * d)  # q·kᵀ and the weighted sum of v
    return sdpa(q, k, v, *args, **kwargs)


F.scaled_dot_product_attention = counted_sdpa
result = {}
for shape, height, width in shapes:
    counts.clear()
    with torch.device('meta'):
        unet(torch.empty(2, 4, height, width), torch.empty(2), context=torch.empty(2, 77, 768))
    result[shape] = {k: 2 * v / 1e9 for k, v in sorted(counts.items())}
print(json.dumps(result))
