"""Write golden data for glimpse's image preprocessing: tests/fixtures/preprocess/.

Regenerate (repository root; the environment of make_fixtures.py):

    .venv/bin/python tools/make_preprocess_fixtures.py

This rewrites tests/fixtures/preprocess/ completely (deterministic: numpy generators
seeded from the image name; byte-identical files for the same Pillow / torch
versions) and prints one line per image plus the total size.

Images (synthetic but photo-like: smooth colour gradients, soft blobs, noise):

- `exif6.jpg`: stored 173 x 131 (w x h), JPEG quality 90 (Pillow's default 4:2:0
  chroma subsampling), EXIF Orientation = 6: shown rotated 90 degrees clockwise, so
  131 x 173 after `PIL.ImageOps.exif_transpose`;
- `portrait.png`: 97 x 150 RGB;
- `rgba.png`: 120 x 80 RGBA with a varying alpha; `convert('RGB')` DROPS the alpha
  channel (no compositing onto a background);
- `gray.png`: 64 x 64 'L'; `convert('RGB')` copies it into the three channels.

The reference for image `stem` and config `id` is

    timm.data.create_transform(input_size=(3, S, S), crop_pct=P, interpolation=I, mean=M, std=D)(
        PIL.ImageOps.exif_transpose(Image.open(path)).convert('RGB'))

stored in `expected.safetensors` as `<stem>.<id>` [3, S, S] float32. That file also
holds `<stem>.rgb`, uint8 [H, W, 3]: the decoded pixels after exif_transpose and
convert('RGB') (what the transform starts from), so a decoder difference (JPEG IDCT
and chroma upsampling differ between libjpeg and other decoders) can be told from
a resize difference. Metadata: `configs` = JSON list of {id, size, crop_pct,
interpolation, mean, std, resize} and the versions `pillow`, `torchvision`, `timm`.

What the eval transform runs (timm 1.0.31 transforms_imagenet_eval, crop_mode
'center', torchvision 0.29.2 on PIL images):

1. Resize(R) with R = floor(S / P) (math.floor, not round): the SHORTER side becomes
   R and the longer side int(R * long / short) (truncated); the image is returned
   unchanged when it already has that size. On PIL images this is
   `img.resize((w, h), resample)`: Pillow's resampling, which for bilinear and
   bicubic (a = -0.5) widens the filter support by the scale factor when
   downscaling (antialiasing) and works on uint8: fixed-point coefficients (22
   fractional bits), horizontal pass first, its result rounded and clipped to uint8
   before the vertical pass. Nearest is Pillow's affine transform with the source
   coordinate ACCUMULATED in double precision: s = src / dst, c = 0.5 * s, then for
   each output pixel take int(c) and do c += s (per axis). The closed form
   floor((d + 0.5) * s) differs from it whenever the exact value is an integer (64 ->
   53: output 26 reads source 31, not 32; about 18% of the (src, dst) pairs tried,
   src 2..256, have such a pixel, while the accumulated rule matched Pillow on all
   of them); nearest_reference() below checks it on the fixtures.
2. CenterCrop(S): top = int(round((h - S) / 2)), left = int(round((w - S) / 2))
   (Python round, half to even).
3. MaybeToTensor: torchvision to_tensor, uint8 / 255 in float32, HWC -> CHW.
4. Normalize: (x - mean) / std per channel, float32.

Configs (ids as in the tensor names; `str(transform)` as printed by the script):

| id | S | crop_pct | resize R | interpolation | mean | std |
|---|---|---|---|---|---|---|
| s64_bicubic | 64 | 0.875 | 73 | bicubic | IMAGENET_DEFAULT (0.485, 0.456, 0.406) | (0.229, 0.224, 0.225) |
| s56_bilinear | 56 | 1.0 | 56 | bilinear | (0.5, 0.5, 0.5) | (0.5, 0.5, 0.5) |
| s48_nearest | 48 | 0.9 | 53 | nearest | IMAGENET_DEFAULT | IMAGENET_DEFAULT |

    s64_bicubic:  Compose(Resize(size=73, interpolation=bicubic, max_size=None, antialias=True),
                  CenterCrop(size=(64, 64)), MaybeToTensor(),
                  Normalize(mean=tensor([0.4850, 0.4560, 0.4060]), std=tensor([0.2290, 0.2240, 0.2250])))
    s56_bilinear: Compose(Resize(size=56, interpolation=bilinear, max_size=None, antialias=True),
                  CenterCrop(size=(56, 56)), MaybeToTensor(),
                  Normalize(mean=tensor([0.5000, 0.5000, 0.5000]), std=tensor([0.5000, 0.5000, 0.5000])))
    s48_nearest:  Compose(Resize(size=53, interpolation=nearest, max_size=None, antialias=True),
                  CenterCrop(size=(48, 48)), MaybeToTensor(),
                  Normalize(mean=tensor([0.4850, 0.4560, 0.4060]), std=tensor([0.2290, 0.2240, 0.2250])))

timm supports 'nearest' cleanly (str_to_interp_mode -> InterpolationMode.NEAREST;
`antialias=True` is ignored for it). Generated with Pillow 13.0.0, torchvision 0.29.2,
timm 1.0.31, torch 2.15.0 (the versions are also in the file's metadata); another
Pillow may round the bicubic / bilinear output differently by one level, and its
JPEG decoder (libjpeg-turbo) may differ, which `<stem>.rgb` pins down.
"""

import json
import math
import sys
import zlib
from pathlib import Path

import numpy as np
import PIL
import timm
import torch
import torchvision
from PIL import Image, ImageOps
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform

sys.dont_write_bytecode = True  # keep tools/ free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import canonical_safetensors  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "preprocess"
IMAGE_LIMIT = 40_000  # bytes

CONFIGS = [
    dict(id="s64_bicubic", size=64, crop_pct=0.875, interpolation="bicubic",
         mean=list(IMAGENET_DEFAULT_MEAN), std=list(IMAGENET_DEFAULT_STD)),
    dict(id="s56_bilinear", size=56, crop_pct=1.0, interpolation="bilinear",
         mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
    dict(id="s48_nearest", size=48, crop_pct=0.9, interpolation="nearest",
         mean=list(IMAGENET_DEFAULT_MEAN), std=list(IMAGENET_DEFAULT_STD)),
]


def photo(name, w, h, channels=3):
    """Smooth gradients + soft blobs + mild noise, uint8 [h, w, channels]."""
    g = np.random.default_rng(zlib.crc32(name.encode()))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = xx / (w - 1), yy / (h - 1)
    c0, cx, cy = g.uniform(40, 215, 3), g.uniform(-90, 90, 3), g.uniform(-90, 90, 3)
    img = c0 + u[..., None] * cx + v[..., None] * cy  # a corner-to-corner gradient per channel
    img += 25 * np.sin(2 * np.pi * (g.uniform(0.5, 2) * u + g.uniform(0.5, 2) * v))[..., None] * g.uniform(-1, 1, 3)
    for _ in range(6):  # soft coloured blobs
        bx, by = g.uniform(0, w), g.uniform(0, h)
        r = g.uniform(0.08, 0.3) * min(w, h)
        blob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * r * r))
        img += blob[..., None] * g.uniform(-110, 110, 3)
    # a hard-edged rectangle: sharp edges show resampling differences
    x0, y0 = int(g.integers(0, w // 2)), int(g.integers(0, h // 2))
    img[y0:y0 + h // 4, x0:x0 + w // 5] = g.uniform(0, 255, 3)
    img += g.normal(0, 3, img.shape)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if channels == 4:
        alpha = np.clip(np.rint(255 * (0.2 + 0.8 * u) * (0.5 + 0.5 * np.cos(3 * v))), 0, 255).astype(np.uint8)
        img = np.concatenate([img, alpha[..., None]], axis=2)
    if channels == 1:
        img = np.rint(img @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    return img


def make_images():
    paths = []
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    p = OUT / "exif6.jpg"
    Image.fromarray(photo("exif6", 173, 131)).save(p, quality=90, exif=exif.tobytes())
    paths.append(p)
    p = OUT / "portrait.png"
    Image.fromarray(photo("portrait", 97, 150)).save(p, optimize=True)
    paths.append(p)
    p = OUT / "rgba.png"
    Image.fromarray(photo("rgba", 120, 80, 4), "RGBA").save(p, optimize=True)
    paths.append(p)
    p = OUT / "gray.png"
    Image.fromarray(photo("gray", 64, 64, 1), "L").save(p, optimize=True)
    paths.append(p)
    return paths


def transform(cfg):
    s = cfg["size"]
    return create_transform(input_size=(3, s, s), crop_pct=cfg["crop_pct"], interpolation=cfg["interpolation"],
                            mean=tuple(cfg["mean"]), std=tuple(cfg["std"]))


def pillow_nearest_index(dst, src):
    """Source index per output pixel of Pillow's NEAREST resize (accumulated coordinate)."""
    step = src / dst
    c, out = 0.5 * step, []
    for _ in range(dst):
        out.append(int(c))
        c += step
    return np.array(out)


def nearest_reference(rgb, cfg):
    """The nearest config redone in numpy from the rules of the docstring (exact match)."""
    a = np.asarray(rgb)
    h, w = a.shape[:2]
    r = cfg["resize"]
    nh, nw = (int(r * h / w), r) if w <= h else (r, int(r * w / h))
    rows, cols = pillow_nearest_index(nh, h), pillow_nearest_index(nw, w)
    a = a[rows][:, cols]
    s = cfg["size"]
    top, left = int(round((nh - s) / 2)), int(round((nw - s) / 2))
    a = torch.from_numpy(a[top:top + s, left:left + s].copy()).permute(2, 0, 1).float() / 255
    return (a - torch.tensor(cfg["mean"])[:, None, None]) / torch.tensor(cfg["std"])[:, None, None]


def main():
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.name != "README.md":
            old.unlink()
    configs = []
    for cfg in CONFIGS:
        cfg = dict(cfg, resize=math.floor(cfg["size"] / cfg["crop_pct"]))
        t = transform(cfg)
        assert f"Resize(size={cfg['resize']}, interpolation={cfg['interpolation']}" in str(t), str(t)
        configs.append(cfg)

    tensors = {}
    total = 0
    for path in make_images():
        size = path.stat().st_size
        assert size < IMAGE_LIMIT, f"{path.name}: {size} bytes"
        total += size
        with Image.open(path) as raw:
            raw_mode, raw_size = raw.mode, raw.size
            orientation = raw.getexif().get(0x0112)
            rgb = ImageOps.exif_transpose(raw).convert("RGB")
        stem = path.stem
        tensors[f"{stem}.rgb"] = torch.from_numpy(np.asarray(rgb).copy())
        line = []
        for cfg in configs:
            y = transform(cfg)(rgb)
            assert y.shape == (3, cfg["size"], cfg["size"]) and y.dtype == torch.float32
            tensors[f"{stem}.{cfg['id']}"] = y.contiguous()
            if cfg["interpolation"] == "nearest":
                assert torch.equal(y, nearest_reference(rgb, cfg)), f"{stem}: nearest rule"
            line.append(f"{cfg['id']} [{y.min().item():+.2f}, {y.max().item():+.2f}]")
        print(f"{path.name:13s} {size:6d} B  {raw_mode:4s} {raw_size[0]}x{raw_size[1]} orientation={orientation} "
              f"-> RGB {rgb.size[0]}x{rgb.size[1]}  " + "  ".join(line))
    assert tensors["exif6.rgb"].shape == (173, 131, 3)  # transposed: 131 wide, 173 tall

    meta = {
        "configs": json.dumps(configs),
        "pillow": PIL.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
    }
    out = OUT / "expected.safetensors"
    out.write_bytes(canonical_safetensors(tensors, meta))
    total += out.stat().st_size
    print(f"expected.safetensors {out.stat().st_size} B, {len(tensors)} tensors")
    for cfg in configs:
        print(f"{cfg['id']}: {json.dumps({k: v for k, v in cfg.items() if k != 'id'})}")
        print("    " + str(transform(cfg)).replace("\n", "\n    "))
    print(f"total {total} bytes in {OUT}; Pillow {PIL.__version__}, torchvision {torchvision.__version__}, "
          f"timm {timm.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
