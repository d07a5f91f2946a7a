"""A full-size Stable Diffusion 1.5 checkpoint with random weights, in A1111's single-file layout
(model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.text_model.*, fp16),
built with ldm's own modules and transformers' CLIPTextModel so structure and sizes are the real
ones. For the bench only: never commit the file (write it under data/, which git ignores).

  python3 scripts/make-random-sd15.py [--ldm DIR_HOLDING_ldm] [--out data/bench/random-sd15.safetensors]
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'bench'))
from ldm_env import import_ldm, ldm_root, sd15_unet  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--ldm', help='folder holding ldm/ (default: $LDM_DIR or ../shared/reference)')
p.add_argument('--out', default='data/bench/random-sd15.safetensors')
p.add_argument('--seed', type=int, default=1234)
a = p.parse_args()
root = ldm_root(a.ldm)
if root is None:
    sys.exit('make-random-sd15: no ldm/ found (pass --ldm or set LDM_DIR)')
UNetModel, Encoder, Decoder = import_ldm(root)

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

torch.set_grad_enabled(False)
gen = torch.Generator().manual_seed(a.seed)
unet = sd15_unet(UNetModel)
dd = dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=128,
          ch_mult=[1, 2, 4, 4], num_res_blocks=2, attn_resolutions=[], dropout=0.0)
dec, enc = Decoder(**dd).eval(), Encoder(**dd).eval()
post_quant, quant = torch.nn.Conv2d(4, 4, 1), torch.nn.Conv2d(8, 8, 1)
clip = CLIPTextModel(CLIPTextConfig(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act='quick_gelu', layer_norm_eps=1e-5,
    bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)).eval()
tm = getattr(clip, 'text_model', clip)

# every parameter random and of sane scale (ldm zero-inits output convs; zeros could be faster)
for m in (unet, dec, enc, post_quant, quant, clip):
    for name, t in m.named_parameters():
        if t.ndim >= 2:
            t.copy_(torch.randn(t.shape, generator=gen) / math.sqrt(t[0].numel()))
        elif name.endswith('weight'):
            t.copy_(1 + 0.1 * torch.randn(t.shape, generator=gen))
        else:
            t.copy_(0.05 * torch.randn(t.shape, generator=gen))

sd = {}
for prefix, m in (('model.diffusion_model.', unet), ('first_stage_model.decoder.', dec),
                  ('first_stage_model.encoder.', enc), ('first_stage_model.post_quant_conv.', post_quant),
                  ('first_stage_model.quant_conv.', quant), ('cond_stage_model.transformer.text_model.', tm)):
    for k, v in m.state_dict().items():
        sd[prefix + k] = v.half().contiguous() if v.is_floating_point() else v.contiguous()
sd['cond_stage_model.transformer.text_model.embeddings.position_ids'] = torch.arange(77).unsqueeze(0)
os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
save_file(sd, a.out, metadata={'format': 'pt'})
print(f'wrote {a.out}: {sum(v.numel() for v in sd.values()) / 1e6:.0f}M values')
