"""Makes Stability-AI/stablediffusion's ldm importable (the copy A1111 pins), for the bench's
Python side: the folder holding ldm/ goes on sys.path, and the two imports ldm makes but a UNet
forward never uses (omegaconf's ListConfig check, PIL in ldm/util.py) are stubbed when absent."""
import json
import os
import sys
import types

DEFAULT_LDM = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'reference')


def ldm_root(arg=None):
    """The folder that holds ldm/, or None when it is not there."""
    root = os.path.abspath(arg or os.environ.get('LDM_DIR') or DEFAULT_LDM)
    return root if os.path.isdir(os.path.join(root, 'ldm')) else None


def ldm_unet_or_skip(arg=None):
    """ldm's UNetModel class for a bench script; without ldm/, prints the bench's 'skipped' object
    on stdout and exits 0 (a missing reference is a note, not a failure)."""
    root = ldm_root(arg)
    if root is None:
        print(json.dumps({'skipped': 'no ldm/ found (set LDM_DIR or pass --ldm)'}))
        sys.exit(0)
    return import_ldm(root)[0]


def logger(tag):
    """Progress on stderr (stdout carries the result's JSON)."""
    return lambda msg: print(f'[{tag}] {msg}', file=sys.stderr, flush=True)


def import_ldm(root):
    sys.path.insert(0, root)
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        stub = types.ModuleType('omegaconf')
        lc = types.ModuleType('omegaconf.listconfig')
        lc.ListConfig = type('ListConfig', (list,), {})
        stub.listconfig = lc
        sys.modules['omegaconf'], sys.modules['omegaconf.listconfig'] = stub, lc
    stubbed = []
    try:
        import PIL  # noqa: F401
    except ImportError:
        stubbed = ['PIL', 'PIL.Image', 'PIL.ImageDraw', 'PIL.ImageFont']
        pil = types.ModuleType('PIL')
        for name in ('Image', 'ImageDraw', 'ImageFont'):
            setattr(pil, name, types.ModuleType(f'PIL.{name}'))
            sys.modules[f'PIL.{name}'] = getattr(pil, name)
        sys.modules['PIL'] = pil
    os.environ.setdefault('ATTN_PRECISION', 'fp32')
    from ldm.modules.diffusionmodules.model import Decoder, Encoder
    from ldm.modules.diffusionmodules.openaimodel import UNetModel
    for name in stubbed:  # transformers probes PIL itself and must not find the stub
        del sys.modules[name]
    return UNetModel, Encoder, Decoder


def sd15_unet(UNetModel):
    """v1-inference.yaml's UNet."""
    return UNetModel(image_size=32, in_channels=4, out_channels=4, model_channels=320,
                     attention_resolutions=[4, 2, 1], num_res_blocks=2, channel_mult=[1, 2, 4, 4],
                     num_heads=8, use_spatial_transformer=True, transformer_depth=1, context_dim=768,
                     use_checkpoint=False, legacy=False).eval()


def use_sdpa_attention():
    """A1111's default attention on torch 2 (sd_hijack_optimizations.scaled_dot_product_attention_forward,
    no mask in a UNet): torch's SDPA in place of ldm's einsum/softmax. Call after import_ldm."""
    import torch.nn.functional as F
    from ldm.modules import attention as ldm_attention

    def sdp_forward(self, x, context=None, mask=None):
        h = self.heads
        q = self.to_q(x)
        context = x if context is None else context
        k, v = self.to_k(context), self.to_v(context)
        b, _, inner = q.shape
        d = inner // h
        q, k, v = (t.view(b, -1, h, d).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(b, -1, h * d)
        return self.to_out(out)

    ldm_attention.CrossAttention.forward = sdp_forward
