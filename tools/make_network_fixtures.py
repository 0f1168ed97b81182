"""Write golden fixtures for whole (narrow) timm networks: tests/fixtures/networks/.

Regenerate (repository root; the environment is the one of make_fixtures.py):

    .venv/bin/python tools/make_network_fixtures.py

This rewrites tests/fixtures/networks/ completely (deterministic: per-case seeds
derived from the case name as in make_fixtures.py; two runs give byte-identical
files) and prints one line per case plus the total size. About a minute on a CPU.

Conventions are exactly those of make_fixtures.py (whose helpers this imports):
weights randomised (conv / linear N(0, 1/fan_in), biases N(0, 0.2), BatchNorm weight
1 + N(0, 0.2), bias N(0, 0.2), running_mean N(0, 0.2), running_var U(0.5, 1.5)),
eval mode, input N(0, 1) float32; logits and maps computed in float64
(`model.double()` on the very same weights, the float32 x cast up) and stored as
float32. No conv weight needed scaling: the logits' std is 0.5 to 4 for every case
but resnet34_nl (15.7, max |y| 30: sixteen NonLocalAttn residuals add up), printed
per case and asserted within (0.05, 50); float32 vs float64 logits agree to ~4e-6
relative or better. Randomising every BatchNorm after creation also undoes timm's
zero_init_last (zeroed last BN weight of each residual branch) and NonLocalAttn's
zeroed `norm.weight`; the script checks that every floating tensor of the
state_dict was overwritten (all are set to NaN first).

Files per case NAME:

- NAME.weights.safetensors: `safetensors.torch.save_file(model.state_dict(), path)`:
  float32, timm's key names, int64 `num_batches_tracked` included, no metadata.
- NAME.io.safetensors: `x` [2, 3, 48, 40] (non-square on purpose: the stages run at
  24x20, 12x10, 6x5, 3x3, 2x2, so the `d` variants' ceil-mode average pooling in the
  downsample sees odd sizes), `y` the logits [2, 10], and the maps
  - `map.P.attn` [N, M, C] for every timm SelectiveKernel at module path P (e.g.
    `layer2.0.conv1`; `layerS.B.conv2` in the bottleneck nets): the softmax output of
    its `attn` submodule ([N, M, C, 1, 1]) reshaped;
  - `map.P.channel` [N, C] and `map.P.spatial` [N, 1, H, W] for every CbamModule /
    LightCbamModule at path P (`layerS.B.se`): the outputs of `P.channel.gate` and
    `P.spatial.gate`. Quirk: LightChannelAttn.forward calls `F.sigmoid` directly,
    not `self.gate`, so for `lcbam` the channel map is sigmoid(output of
    `P.channel.fc2`), captured with a hook on fc2 (the same values the gate would give);
  - no maps for NonLocalAttn.
  Metadata (keys sorted): `arch` = `timm.<timm model name>`; `args` = `attn_layer=...`
  for the attention ResNets, else empty (note: cbam / lcbam / nl could also be told
  from the key names and the spatial conv's in-channels); `timm_kwargs` = JSON of the
  kwargs given to `timm.create_model` (besides the name and pretrained=False).
- timm.skresnet18.keys.json: [name, shape, dtype] for every entry of
  `timm.create_model('skresnet18').state_dict()` at full width, 1000 classes: the
  key set of the hub's `timm/skresnet18.ra_in1k` model.safetensors. Whether that file
  holds the `num_batches_tracked` entries could not be checked (the hub is not
  reachable here). timm's own writer, `timm.models._hub.save_for_hf`, does
  `safetensors.torch.save_file(model.state_dict(), ...)`, which includes them, so a
  file pushed by timm should have them; but PyTorch's BatchNorm fills in a missing
  `num_batches_tracked` on a strict load, so timm would load a file without them
  just as well, and a loader should accept both (and ignore them: eval mode does not use them).

Narrow networks: `timm.create_model(name, pretrained=False, num_classes=10,
channels=(...), [stem_width=...], [base_width=...], [block_args=dict(attn_layer=...)])`;
same block types, depths, stems, downsample layouts and state_dict key set as the
full-width model (checked: the key set equals the one of the full-width model built
with the same kwargs less channels / stem_width). Things that constrain the widths:

- The plain 7x7 stem is always 64 wide: timm's ResNet ignores `stem_width` unless
  the stem is deep (`inplanes = stem_width * 2 if deep_stem else 64`), so
  stem_width is passed only to the `d` variants (8: deep stem 8, 8, 16).
- layer1 has no downsample iff channels[0] * expansion == stem output width. To keep
  the real layout, the BasicBlock nets with the 7x7 stem keep channels[0] = 64
  (that stage dominates the file sizes), the deep-stem BasicBlock nets use 16 = 2 *
  stem_width, and the Bottleneck nets use channels[0] * 4 != stem output width.
- Passing `block_args` REPLACES the model function's own block_args (`dict(model_args,
  **kwargs)` is a shallow merge): for the skresnet* functions that would drop
  sk_kwargs (rd_ratio, rd_divisor, split_input), so the SK cases pass no block_args.
  The plain ResNets have no block_args of their own, so `block_args=dict(attn_layer=...)`
  is safe there.
- skresnext50_32x4d keeps cardinality 32 and base_width 4; its bottleneck width is
  floor(planes * 4 / 64) * 32, so planes >= 16 (channels (24, 16, 16, 32): widths 32,
  32, 32, 64, one or two channels per group; channels[0] = 24 since 16 * 4 == 64
  would drop layer1's downsample).

| case (file stem) | timm model | attn_layer | channels | stem_width | kB (weights + io) | logits std |
|---|---|---|---|---|---|---|
| timm.skresnet18 | skresnet18 | - | 64, 16, 16, 24 | - (7x7 stem, 64) | 946.9 | 2.783 |
| timm.skresnet34 | skresnet34 | - | 64, 16, 16, 16 | - (7x7 stem, 64) | 1394.5 | 1.437 |
| timm.skresnet50 | skresnet50 | - | 8, 8, 16, 16 | - (7x7 stem, 64) | 412.2 | 1.531 |
| timm.skresnet50d | skresnet50d | - | 8, 8, 16, 16 | 8 | 375.0 | 1.428 |
| timm.skresnext50_32x4d | skresnext50_32x4d | - | 24, 16, 16, 32 | - (7x7 stem, 64) | 1023.4 | 1.065 |
| timm.resnet18_cbam | resnet18 | cbam | 64, 16, 16, 24 | - (7x7 stem, 64) | 900.2 | 0.490 |
| timm.resnet18_lcbam | resnet18 | lcbam | 64, 16, 16, 24 | - (7x7 stem, 64) | 898.7 | 0.658 |
| timm.resnet18_nl | resnet18 | nl | 64, 16, 16, 24 | - (7x7 stem, 64) | 924.6 | 1.667 |
| timm.resnet18 | resnet18 | - | 64, 16, 16, 24 | - (7x7 stem, 64) | 879.2 | 0.782 |
| timm.resnet26_cbam | resnet26 | cbam | 8, 8, 16, 16 | - (7x7 stem, 64) | 265.0 | 0.553 |
| timm.resnet34_nl | resnet34 | nl | 64, 16, 16, 16 | - (7x7 stem, 64) | 1355.9 | 15.657 |
| timm.resnet50_cbam | resnet50 | cbam | 8, 8, 16, 16 | - (7x7 stem, 64) | 415.5 | 0.573 |
| timm.resnet101_lcbam | resnet101 | lcbam | 8, 8, 16, 16 | - (7x7 stem, 64) | 826.5 | 0.557 |
| timm.resnet18d_cbam | resnet18d | cbam | 16, 16, 24, 32 | 8 | 385.3 | 0.492 |
| timm.resnet26d_nl | resnet26d | nl | 8, 8, 16, 16 | 8 | 267.5 | 1.772 |
| timm.resnet34d_lcbam | resnet34d | lcbam | 16, 16, 24, 32 | 8 | 707.8 | 0.532 |
| timm.resnet50d_cbam | resnet50d | cbam | 8, 8, 16, 16 | 8 | 378.3 | 0.725 |
| timm.resnet101d | resnet101d | - | 8, 8, 16, 16 | 8 | 672.4 | 4.128 |
"""

import json
import math
import sys
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file, save_file
from timm.layers.cbam import CbamModule, LightCbamModule
from timm.layers.selective_kernel import SelectiveKernel

sys.dont_write_bytecode = True  # keep tools/ free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import canonical_safetensors, normal, randomise, rng  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "networks"
X_SHAPE = (2, 3, 48, 40)
NUM_CLASSES = 10
CASE_LIMIT = 1_500_000  # bytes, weights + io of one case
TOTAL_LIMIT = 15_000_000

# (timm model, attn_layer or None, channels, stem_width or None)
BASIC_7x7 = (64, 16, 16, 24)  # layer1 must stay 64 wide (see the docstring)
BASIC_DEEP = (16, 16, 24, 32)  # deep stem 8, 8, 16: layer1 16 wide
BOTTLENECK = (8, 8, 16, 16)  # out widths 32, 32, 64, 64
CASES = [
    ("skresnet18", None, BASIC_7x7, None),
    ("skresnet34", None, (64, 16, 16, 16), None),
    ("skresnet50", None, BOTTLENECK, None),
    ("skresnet50d", None, BOTTLENECK, 8),
    ("skresnext50_32x4d", None, (24, 16, 16, 32), None),
    ("resnet18", "cbam", BASIC_7x7, None),
    ("resnet18", "lcbam", BASIC_7x7, None),
    ("resnet18", "nl", BASIC_7x7, None),
    ("resnet18", None, BASIC_7x7, None),
    ("resnet26", "cbam", BOTTLENECK, None),
    ("resnet34", "nl", (64, 16, 16, 16), None),
    ("resnet50", "cbam", BOTTLENECK, None),
    ("resnet101", "lcbam", BOTTLENECK, None),
    ("resnet18d", "cbam", BASIC_DEEP, 8),
    ("resnet26d", "nl", BOTTLENECK, 8),
    ("resnet34d", "lcbam", BASIC_DEEP, 8),
    ("resnet50d", "cbam", BOTTLENECK, 8),
    ("resnet101d", None, BOTTLENECK, 8),
]

written = []  # (case, bytes)


def case_name(model_name, attn):
    return f"timm.{model_name}" + (f"_{attn}" if attn else "")


def timm_kwargs(attn, channels, stem_width):
    kw = dict(num_classes=NUM_CLASSES, channels=list(channels))
    if stem_width is not None:
        kw["stem_width"] = stem_width
    if attn:
        kw["block_args"] = dict(attn_layer=attn)
    return kw


def create(model_name, kw):
    kw = dict(kw)
    if "channels" in kw:
        kw["channels"] = tuple(kw["channels"])
    return timm.create_model(model_name, pretrained=False, **kw)


def check_structure(model_name, kw, model):
    """The narrow model has the key set of the full-width one (same kwargs less widths)."""
    full_kw = {k: v for k, v in kw.items() if k not in ("channels", "stem_width")}
    full = create(model_name, full_kw)
    assert full.state_dict().keys() == model.state_dict().keys(), f"{model_name}: key set differs from full width"
    assert type(full.layer1[0]) is type(model.layer1[0])


def hook_maps(model, store, counts):
    def hook(key, fn=lambda t: t):
        def f(_m, _i, out):
            counts[key] = counts.get(key, 0) + 1
            store[key] = fn(out.detach()).clone()
        return f

    expected = []
    for path, m in model.named_modules():
        if isinstance(m, SelectiveKernel):
            m.attn.register_forward_hook(hook(f"{path}.attn", lambda t: t.flatten(2)))
            expected.append(f"{path}.attn")
        elif isinstance(m, LightCbamModule):
            m.channel.fc2.register_forward_hook(hook(f"{path}.channel", lambda t: torch.sigmoid(t).flatten(1)))
            m.spatial.gate.register_forward_hook(hook(f"{path}.spatial"))
            expected += [f"{path}.channel", f"{path}.spatial"]
        elif isinstance(m, CbamModule):
            m.channel.gate.register_forward_hook(hook(f"{path}.channel", lambda t: t.flatten(1)))
            m.spatial.gate.register_forward_hook(hook(f"{path}.spatial"))
            expected += [f"{path}.channel", f"{path}.spatial"]
    return expected


def run_case(model_name, attn, channels, stem_width):
    name = case_name(model_name, attn)
    kw = timm_kwargs(attn, channels, stem_width)
    model = create(model_name, kw)
    check_structure(model_name, kw, model)

    gen = rng(name)
    sd = model.state_dict()
    for v in sd.values():
        if v.is_floating_point():
            v.fill_(float("nan"))
    randomise(model, gen)
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert not v.isnan().any(), f"{name}: {k} was not randomised"
            if not k.endswith("running_var"):
                assert v.numel() == 1 or v.std() > 0, f"{name}: {k} is constant"
    x = normal(gen, X_SHAPE)

    wpath = OUT / f"{name}.weights.safetensors"
    save_file(model.state_dict(), str(wpath))
    y32 = model(x).detach()

    # a fresh model loaded strictly from the file: the float64 ground truth
    ref = create(model_name, kw)
    ref.load_state_dict(load_file(str(wpath)), strict=True)
    ref.eval().double()
    store, counts = {}, {}
    expected = hook_maps(ref, store, counts)
    with torch.no_grad():
        y = ref(x.double())
    assert sorted(store) == sorted(expected) and all(c == 1 for c in counts.values()), f"{name}: hooks"
    assert y.shape == (X_SHAPE[0], NUM_CLASSES)
    assert torch.isfinite(y).all()
    std = y.std().item()
    assert 0.05 < std < 50, f"{name}: logits std {std:.3g} not O(1)"
    err32 = (y32.double() - y).abs().max().item() / y.abs().max().item()

    tensors = {"x": x.contiguous(), "y": y.float().contiguous()}
    for k in expected:
        v = store[k]
        if k.endswith(".attn"):
            assert torch.allclose(v.sum(1), torch.ones_like(v.sum(1)))
        else:
            assert ((v > 0) & (v < 1)).all()
        tensors["map." + k] = v.float().contiguous()
    meta = {
        "arch": f"timm.{model_name}",
        "args": f"attn_layer={attn}" if attn else "",
        "timm_kwargs": json.dumps(kw, sort_keys=True),
    }
    iopath = OUT / f"{name}.io.safetensors"
    iopath.write_bytes(canonical_safetensors(tensors, meta))
    size = wpath.stat().st_size + iopath.stat().st_size
    assert size < CASE_LIMIT, f"{name}: {size} bytes"
    written.append((name, size))
    nparams = sum(v.numel() for v in model.state_dict().values())
    nmaps = len(expected)
    print(f"{name:28s} {nparams:7d} values {size / 1e3:7.1f} kB  {nmaps:2d} maps  "
          f"logits std {std:.3f} max {y.abs().max().item():.3f}  f32 rel err {err32:.1e}")
    return std


def write_keys_json():
    model = timm.create_model("skresnet18", pretrained=False)
    rows = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()]
    path = OUT / "timm.skresnet18.keys.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    n = sum(math.prod(s) for _, s, d in rows if d == "float32")
    print(f"timm.skresnet18.keys.json    {len(rows)} entries, {n} float32 values "
          f"({sum(1 for r in rows if r[0].endswith('num_batches_tracked'))} num_batches_tracked)")
    written.append((path.name, path.stat().st_size))


def main():
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.name != "README.md":
            old.unlink()
    print(f"timm {timm.__version__}, torch {torch.__version__}")
    with torch.no_grad():
        for case in CASES:
            run_case(*case)
    write_keys_json()
    total = sum(size for _, size in written)
    print(f"{len(CASES)} cases, {total} bytes ({total / 1e6:.3f} MB) in {OUT}")
    assert total < TOTAL_LIMIT


if __name__ == "__main__":
    main()
