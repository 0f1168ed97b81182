"""Write the PyTorch golden fixtures that glimpse's Rust tests compare against.

Recreate the environment and regenerate (from the repository root):

    python3 -m venv .venv && .venv/bin/pip install -r tools/requirements.txt
    .venv/bin/python tools/make_fixtures.py

This rewrites tests/fixtures/ completely (deterministic: fixed per-fixture seeds
derived from the fixture name; two runs give byte-identical files) and prints one
line per fixture plus the total size. It takes a few seconds on a CPU.

Files per fixture NAME:

- NAME.weights.safetensors: exactly `safetensors.torch.save_file(model.state_dict(), path)`
  (no metadata), so BatchNorm's int64 `num_batches_tracked` scalars are present.
  Absent for weightless archs (CenterCrop, MaxPool2d). Float32, except the cases
  saved as float16 (`timm.CbamModule_f16`) and bfloat16 (`SKConv_bf16`).
- NAME.io.safetensors: `x` (input), `y` (output) and attention maps `map.<name>`,
  all float32; metadata:
  - `arch`: the block (names below);
  - `args`: space-separated KEY=VALUE with PyTorch's argument names for the
    constructor arguments the weight shapes do not determine; lists are
    comma-separated (`size=7,6`), booleans `true`/`false`; an omitted key takes the
    PyTorch default. Empty string when there are none;
  - `queries` (Non-local only): `x,y;x,y;...` pixel coordinates (column first) of
    the query pixels whose attention rows are stored in `map.attention`.

Ground truth: weights and inputs are drawn in float32 and saved as they are; the
outputs and maps are then computed in float64 (`model.double()` on the very same
weights; for the float16 / bfloat16 cases, on the rounded weights that were
saved) and stored rounded to float32, so `y` is the exact answer for the stored
`x` and weights to float32 precision, not a float32 computation with its own
rounding errors.

Randomisation (everything, so that no term can be silently dropped): conv and
linear weights N(0, 1/fan_in) (fan_in = in/groups * kh * kw), biases N(0, 0.2);
BatchNorm weight 1 + N(0, 0.2), bias N(0, 0.2), running_mean N(0, 0.2),
running_var U(0.5, 1.5), eps 1e-5, eval mode; inputs N(0, 1). BatchNorm weights are
centred on 1, not 0, so that activations stay O(1) through the blocks.

Arch names and their maps:

- SpatialAttention, ChannelAttention (tutorial): y is the map itself (N x 1 x H x W,
  N x C x 1 x 1); no maps.
- SKConv: map.branch (N x M x C softmax branch weights). args `stride`.
- BasicBlock (CBAM ResNet block): map.channel (N x C), map.spatial (N x 1 x H x W at
  the output resolution). args `stride`.
- NonLocal (embedded Gaussian): map.attention (N x Q x Hk x Wk, the softmax rows of
  the Q query pixels; Hk x Wk = H//2 x W//2 when sub-sampled, else H x W).
  args `sub_sample` (bn_layer shows in the names: W.0/W.1 vs W).
- CenterCrop: args `size=h,w`; torchvision's center_crop (offsets
  int(round((H - h) / 2)), Python round = half to even), run from torchvision and
  checked against plain slicing with those offsets (tutorial_modules.center_crop).
- MaxPool2d: args `kernel_size`, `stride` (default kernel_size), `padding`
  (implicit -inf), floor mode, dilation 1.
- timm.CbamModule: map.channel (N x C), map.spatial (N x 1 x H x W).
- timm.SelectiveKernel: map.attn (N x M x C; timm's `attn` submodule). args `kernel_size` (the list before
  keep_3x3 turns 5, 7 into dilated 3x3), `split_input`, `stride`.
- timm.NonLocalAttn: map.attention as NonLocal (keys = all H x W pixels).
  args `use_scale`.
"""

import json
import struct
import sys
import zlib
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from safetensors.torch import load_file, save, save_file
from timm.layers.cbam import CbamModule
from timm.layers.non_local_attn import NonLocalAttn
from timm.layers.selective_kernel import SelectiveKernel
from torch import nn

sys.dont_write_bytecode = True  # keep tools/ free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
import functional_ref as ref  # noqa: E402
import tutorial_modules as tm  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
BATCH = 2
TOL = 1e-11  # float64 module vs float64 functional recomputation, relative to max |ref|
written = []  # (name, bytes)


def rng(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def normal(gen, shape, std=1.0, mean=0.0):
    return torch.randn(shape, generator=gen) * std + mean


def randomise(model, gen):
    """Overwrite every parameter and BatchNorm buffer (see the module docstring)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            w = module.weight
            fan_in = w[0].numel()
            w.data = normal(gen, w.shape, fan_in ** -0.5)
            if module.bias is not None:
                module.bias.data = normal(gen, module.bias.shape, 0.2)
        elif isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.weight.data = normal(gen, (c,), 0.2, 1.0)
            module.bias.data = normal(gen, (c,), 0.2)
            module.running_mean.data = normal(gen, (c,), 0.2)
            module.running_var.data = torch.rand((c,), generator=gen) + 0.5
    model.eval()


def close(got, want, what):
    err = (got - want).abs().max().item() / max(want.abs().max().item(), 1e-30)
    assert err < TOL, f"{what}: relative error {err:.3e} vs functional recomputation"


def canonical_safetensors(tensors, metadata):
    """safetensors bytes with the metadata keys in sorted order.

    The library serialises `__metadata__` from a Rust HashMap, whose order changes
    from run to run; rewriting the header (same length, same offsets) with sorted
    keys makes the files byte-reproducible.
    """
    blob = save(tensors, metadata=metadata)
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n
    return blob[:8] + text + b" " * (n - len(text)) + blob[8 + n:]


def write(name, arch, x, y, maps=None, args="", queries=None, model=None):
    tensors = {"x": x.float().contiguous(), "y": y.float().contiguous()}
    for k, v in (maps or {}).items():
        tensors["map." + k] = v.float().contiguous()
    meta = {"arch": arch, "args": args}
    if queries is not None:
        meta["queries"] = ";".join(f"{qx},{qy}" for qx, qy in queries)
    io_path = OUT / f"{name}.io.safetensors"
    io_path.write_bytes(canonical_safetensors(tensors, meta))
    size = io_path.stat().st_size
    if model is not None:
        size += (OUT / f"{name}.weights.safetensors").stat().st_size
    written.append((name, size))
    shapes = " ".join(f"{k}{list(v.shape)}" for k, v in tensors.items())
    print(f"{name:32s} {arch:22s} args='{args}' {shapes} max|y|={y.abs().max().item():.4f}")


def build(name, model, x_shape, weight_dtype=torch.float32, tweak=None):
    """Randomise `model`, save its weights in `weight_dtype`, return (float64 model, float64 x, state dict)."""
    gen = rng(name)
    randomise(model, gen)
    if tweak is not None:
        tweak(model)
    x = normal(gen, x_shape)
    model.to(weight_dtype)
    path = str(OUT / f"{name}.weights.safetensors")
    save_file(model.state_dict(), path)
    model.double()
    sd = {k: v.double() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    saved = load_file(path)
    assert saved.keys() == sd.keys()
    for k, v in saved.items():  # the float64 model holds exactly the saved (rounded) values
        assert v.dtype == (weight_dtype if v.is_floating_point() else torch.int64), f"{name}: {k} dtype"
        assert torch.equal(v.to(sd[k].dtype), sd[k]), f"{name}: {k} differs from the saved weights"
    return model, x.double(), sd


def pick_rows(att, h, w, queries):
    """Rows of the N x HW x Hk x Wk attention for (x, y) query pixels -> N x Q x Hk x Wk."""
    assert att.shape[1] == h * w
    return att[:, [qy * w + qx for qx, qy in queries]]


def default_queries(h, w):
    return [(0, 0), (w // 2, h // 2), (w - 1, h - 2)]


# ---- tutorial blocks ----

def spatial_attention(name, k, c, h, w):
    model, x, sd = build(name, tm.SpatialAttention(k), (BATCH, c, h, w))
    y = model(x)
    close(y, ref.spatial_attention(x, sd), name)
    write(name, "SpatialAttention", x, y, model=model)


def channel_attention(name, c, ratio, h, w):
    model, x, sd = build(name, tm.ChannelAttention(c, ratio), (BATCH, c, h, w))
    y = model(x)
    close(y.flatten(1), ref.channel_attention(x, sd), name)
    write(name, "ChannelAttention", x, y, model=model)


def skconv(name, c, h, w, M, G, r, L=32, stride=1, weight_dtype=torch.float32):
    model, x, sd = build(name, tm.SKConv(c, M=M, G=G, r=r, stride=stride, L=L), (BATCH, c, h, w), weight_dtype)
    y, maps = model(x, return_maps=True)
    want, want_maps = ref.skconv(x, sd, stride)
    close(y, want, name)
    close(maps["branch"], want_maps["branch"], name + " map.branch")
    write(name, "SKConv", x, y, maps, "stride=2" if stride == 2 else "", model=model)


def basic_block(name, inplanes, planes, stride, h, w):
    model, x, sd = build(name, tm.BasicBlock(inplanes, planes, stride), (BATCH, inplanes, h, w))
    assert (model.downsample is not None) == (stride != 1 or inplanes != planes)
    y, maps = model(x, return_maps=True)
    want, want_maps = ref.basic_block(x, sd, stride)
    close(y, want, name)
    for k in maps:
        close(maps[k], want_maps[k], f"{name} map.{k}")
    write(name, "BasicBlock", x, y, maps, "stride=2" if stride == 2 else "", model=model)


def nonlocal_block(name, c, h, w, sub_sample, bn_layer, logit_scale=None):
    def tweak(model):  # scale theta and phi so the attention logits get huge
        for m in (model.theta, model.phi[0] if sub_sample else model.phi):
            m.weight.data *= logit_scale
            m.bias.data *= logit_scale

    module = tm.NonLocal(c, sub_sample=sub_sample, bn_layer=bn_layer)
    model, x, sd = build(name, module, (BATCH, c, h, w), tweak=tweak if logit_scale else None)
    y, maps = model(x, return_maps=True)
    want, want_maps, logits = ref.nonlocal_block(x, sd, sub_sample)
    close(y, want, name)
    close(maps["attention"], want_maps["attention"], name + " map.attention")
    max_logit = logits.max().item()
    if logit_scale:
        assert max_logit > 300, f"{name}: max logit {max_logit:.1f} is not > 300"
    queries = default_queries(h, w)
    maps = {"attention": pick_rows(maps["attention"], h, w, queries)}
    print(f"  ({name}: max logit = {max_logit:.1f})")
    write(name, "NonLocal", x, y, maps, f"sub_sample={str(sub_sample).lower()}", queries, model=model)


# ---- hard attention ----

def center_crop(name, c, h, w, size, offsets):
    gen = rng(name)
    x = normal(gen, (BATCH, c, h, w)).double()
    y = TF.center_crop(x, list(size))
    assert tm.center_crop_offsets(h, w, *size) == offsets, f"{name}: offsets"
    top, left = offsets
    assert torch.equal(y, x[..., top:top + size[0], left:left + size[1]]), f"{name}: torchvision disagrees"
    assert torch.equal(y, tm.center_crop(x, size))
    write(name, "CenterCrop", x, y, args=f"size={size[0]},{size[1]}")


def max_pool(name, c, h, w, kernel_size, stride=None, padding=0):
    gen = rng(name)
    x = (normal(gen, (BATCH, c, h, w)) - 1.0).double()  # mostly negative: -inf vs zero padding differs
    args = [f"kernel_size={kernel_size}"]
    if stride is not None:
        args.append(f"stride={stride}")
    if padding:
        args.append(f"padding={padding}")
    y = nn.MaxPool2d(kernel_size, stride, padding)(x)
    close(y, ref.max_pool(x, kernel_size, stride or kernel_size, padding), name)
    if padding:
        zero_padded = nn.functional.max_pool2d(nn.functional.pad(x, (padding,) * 4), kernel_size, stride)
        assert not torch.equal(y, zero_padded), f"{name}: fixture cannot tell -inf from zero padding"
    write(name, "MaxPool2d", x, y, args=" ".join(args))


# ---- timm blocks ----

def capture(module, store, key):
    module.register_forward_hook(lambda _m, _i, out: store.__setitem__(key, out.detach().clone()))


def timm_cbam(name, c, h, w, weight_dtype=torch.float32):
    model, x, sd = build(name, CbamModule(c), (BATCH, c, h, w), weight_dtype)
    assert model.channel.fc1.out_channels == max(1, int(c / 16 + 0.5))
    store = {}
    capture(model.channel.gate, store, "channel")
    capture(model.spatial.gate, store, "spatial")
    y = model(x)
    maps = {"channel": store["channel"].flatten(1), "spatial": store["spatial"]}
    want, want_maps = ref.timm_cbam(x, sd)
    close(y, want, name)
    for k in maps:
        close(maps[k], want_maps[k], f"{name} map.{k}")
    write(name, "timm.CbamModule", x, y, maps, model=model)


def timm_sk(name, c, h, w, kernel_size=(3, 5), split_input=True, stride=1):
    module = SelectiveKernel(c, kernel_size=list(kernel_size), split_input=split_input, stride=stride)
    model, x, sd = build(name, module, (BATCH, c, h, w))
    store = {}
    capture(model.attn, store, "branch")
    y = model(x)
    maps = {"attn": store["branch"].flatten(2)}
    want, want_maps = ref.timm_selective_kernel(x, sd, kernel_size, split_input, stride)
    close(y, want, name)
    close(maps["attn"], want_maps["branch"], name + " map.attn")
    args = [f"kernel_size={','.join(map(str, kernel_size))}", f"split_input={str(split_input).lower()}"]
    if stride != 1:
        args.append(f"stride={stride}")
    write(name, "timm.SelectiveKernel", x, y, maps, " ".join(args), model=model)


def timm_nonlocal(name, c, h, w, use_scale=True):
    model, x, sd = build(name, NonLocalAttn(c, use_scale=use_scale), (BATCH, c, h, w))
    y = model(x)
    want, want_maps, logits = ref.timm_nonlocal(x, sd, use_scale)
    close(y, want, name)  # the maps come from the recomputation, pinned to timm's y here
    queries = default_queries(h, w)
    maps = {"attention": pick_rows(want_maps["attention"], h, w, queries)}
    print(f"  ({name}: max logit = {logits.max().item():.1f})")
    write(name, "timm.NonLocalAttn", x, y, maps, "" if use_scale else "use_scale=false", queries, model=model)


def main():
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.safetensors"):
        old.unlink()

    spatial_attention("SpatialAttention_k3", 3, 8, 7, 9)
    spatial_attention("SpatialAttention_k7", 7, 16, 11, 13)
    channel_attention("ChannelAttention_r4", 16, 4, 7, 9)
    channel_attention("ChannelAttention_r8", 32, 8, 11, 13)

    skconv("SKConv_M2_G1", 16, 11, 13, M=2, G=1, r=2)
    skconv("SKConv_M3_G4", 32, 13, 13, M=3, G=4, r=4, L=8)
    skconv("SKConv_M2_G4_s2", 16, 11, 13, M=2, G=4, r=2, L=4, stride=2)
    skconv("SKConv_bf16", 16, 7, 9, M=2, G=1, r=2, L=8, weight_dtype=torch.bfloat16)

    basic_block("BasicBlock_s1", 32, 32, 1, 7, 9)
    basic_block("BasicBlock_s2_ds", 16, 32, 2, 11, 13)

    nonlocal_block("NonLocal_sub_bn", 16, 11, 13, sub_sample=True, bn_layer=True)
    nonlocal_block("NonLocal_sub_nobn", 16, 13, 13, sub_sample=True, bn_layer=False)
    nonlocal_block("NonLocal_nosub_bn", 16, 7, 9, sub_sample=False, bn_layer=True)
    nonlocal_block("NonLocal_nosub_nobn", 8, 7, 9, sub_sample=False, bn_layer=False)
    nonlocal_block("NonLocal_big_logits", 16, 7, 9, sub_sample=False, bn_layer=True, logit_scale=8.0)

    center_crop("CenterCrop_7x6_odd", 8, 13, 13, (7, 6), (3, 4))  # width margin 7: 3.5 -> 4
    center_crop("CenterCrop_5x7_even", 8, 11, 13, (5, 7), (3, 3))
    center_crop("CenterCrop_8x6_half_even", 8, 13, 13, (8, 6), (2, 4))  # 2.5 -> 2 (half up would say 3)
    max_pool("MaxPool2d_k3_s2_p1", 8, 11, 13, 3, stride=2, padding=1)
    max_pool("MaxPool2d_k2", 8, 13, 13, 2)

    timm_cbam("timm.CbamModule", 32, 11, 13)
    timm_cbam("timm.CbamModule_f16", 16, 7, 9, weight_dtype=torch.float16)
    timm_sk("timm.SelectiveKernel", 32, 11, 13)
    timm_sk("timm.SelectiveKernel_p3_nosplit", 16, 13, 13, kernel_size=(3, 5, 7), split_input=False)
    timm_sk("timm.SelectiveKernel_s2", 32, 11, 13, stride=2)
    timm_nonlocal("timm.NonLocalAttn", 32, 7, 9)
    timm_nonlocal("timm.NonLocalAttn_noscale", 16, 9, 11, use_scale=False)

    total = sum(size for _, size in written)
    print(f"{len(written)} fixtures, {total} bytes ({total / 1e6:.3f} MB) in {OUT}")
    assert total < 3_000_000


if __name__ == "__main__":
    main()
