"""Seeds tools/fuzz/corpus/<target>/ from the repository's fixtures (the corpus itself is not
committed; libFuzzer grows it). Run from the repository root: python3 tools/fuzz/seed.py"""

import json
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tools/fuzz/corpus"
FIXTURES = ROOT / "tests/fixtures"


def metadata(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]).get("__metadata__", {}), json.loads(data[8 : 8 + n])


def seed(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# The safetensors reader: every small fixture (weights and inputs, F32 / F16 / BF16 / I64).
for path in sorted(FIXTURES.rglob("*.safetensors")):
    if path.stat().st_size <= 128 << 10:
        seed("tensorfile", path.name, path.read_bytes())

# The photo decoder: the preprocessing fixtures (EXIF, gray, RGBA) and the demo pictures.
for path in sorted((FIXTURES / "preprocess").iterdir()) + sorted((ROOT / "examples/demo/images").iterdir()):
    if path.suffix in (".png", ".jpg", ".jpeg"):
        seed("photo", path.name, path.read_bytes())

# The model file: the demo model's network JSON, and variants of its input size.
meta, _ = metadata(ROOT / "examples/demo/model.safetensors")
spec = meta["glimpse.network"]
seed("model_file", "demo.json", spec)
for i, size in enumerate([[3, 32, 48], [1, 64, 64], [3, 7, 5]]):
    seed("model_file", f"demo-{i}.json", json.dumps({**json.loads(spec), "input": size}))

# Block arguments: first byte picks the architecture (its index in block_args.rs's ARCHS), four
# bytes the input shape, then the fixture's own KEY=VALUE arguments, one per line.
ARCHS = ["BasicBlock_s2_ds", "ChannelAttention_r4", "SpatialAttention_k7", "SKConv_M2_G4_s2", "NonLocal_sub_bn",
         "timm.CbamModule", "timm.CbamModule", "timm.SelectiveKernel", "timm.NonLocalAttn",
         "networks/timm.resnet18_cbam", "networks/timm.resnet26d_nl", "CenterCrop_7x6_odd", "MaxPool2d_k3_s2_p1"]
for i, name in enumerate(ARCHS):
    meta, header = metadata(FIXTURES / f"{name}.io.safetensors")
    n, c, h, w = header["x"]["shape"]
    args = "\n".join(meta.get("args", "").split())
    seed("block_args", f"{i}-{Path(name).name}", bytes([i, n - 1, c - 1, h - 1, w - 1]) + args.encode())
print("seeded", ", ".join(f"{d.name}: {len(list(d.iterdir()))}" for d in sorted(CORPUS.iterdir())))
