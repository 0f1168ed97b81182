"""Train and export glimpse's bundled demo model (examples/demo/model.safetensors).

The task (tools/demo_data.py): 64 x 64 images of 5-8 shapes, all one colour but
one; the class is the shape (circle, square, triangle) of the odd-coloured one.

The network uses only glimpse architectures, each with the tutorial's
state_dict names (tools/tutorial_modules.py), so glimpse loads it by prefix:

    stem.    ConvBnAct 3 -> 16, 3x3, stride 2           64 x 64 -> 32 x 32
    layer1.  BasicBlock (CBAM) 16 -> 16                 maps layer1.channel, layer1.spatial (32 x 32)
    sk.      SKConv 16, M 2 (3x3, 5x5), G 1, d 8         map sk.branch
    layer2.  BasicBlock (CBAM) 16 -> 32, stride 2        maps layer2.channel, layer2.spatial (16 x 16)
    nl.      NonLocal 32, sub_sample                     map nl.attention       (--no-nonlocal leaves it out)
             GlobalAvgPool
    fc.      Linear 32 -> 3

Training: AdamW, one-cycle learning rate, horizontal flips, cross-entropy on
the class. Plain classification training learns the task but does not make the
last CBAM spatial map (layer2.spatial) peak on the odd object often enough for
the pointing game (>= 90%; see tools/README.md for the numbers), so by default
an auxiliary loss supervises that map: a softmax over the 16 x 16 pre-sigmoid
logits of layer2's spatial-attention conv, cross-entropy toward "somewhere in
the odd object's box" (-log of the softmax mass on the cells whose centres lie
in the box), weighted by --aux (0 turns it off). It asks the peak to be in the
box, not what the map does elsewhere. A second term, (max(0, logit - 8))^2,
keeps the logits from growing without bound: the first version without it
reached logits of about 25, where the float32 sigmoid map is 1.0 in several
cells at once, and the peak (first maximum) was then often outside the box
although the logits' peak was always inside.

Export: every float tensor of the state_dict (float32; BatchNorm's integer
num_batches_tracked is left out, glimpse ignores it), with the network under
`glimpse.network` in the safetensors metadata (see src/models/mod.rs). The
script then rebuilds the model from the exported file alone and asserts that
its eval-mode logits and maps equal the trained model's.

Commands (repository root, with the environment of tools/requirements.txt;
about 4 minutes on one core; tools/README.md has the numbers measured):

    .venv/bin/python tools/demo_data.py heldout     # the held-out PNGs the Rust test scores
    .venv/bin/python tools/train_demo.py            # train, report, export
    .venv/bin/python tools/train_demo.py --aux 0 --no-export   # plain classification, for comparison
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

sys.dont_write_bytecode = True  # keep tools/ free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_data as data  # noqa: E402
import tutorial_modules as tm  # noqa: E402

MODEL = data.DEMO / "model.safetensors"
NETWORK_KEY = "glimpse.network"
MAP_SCALE = 4  # layer2.spatial is 16 x 16 for a 64 x 64 image
LOGIT_CAP = 8.0  # the auxiliary loss keeps layer2's spatial logits below this (sigmoid(8) = 0.99966)


class ConvBnAct(nn.Module):
    """glimpse's ConvBnAct: conv (no bias, padding k // 2) + BatchNorm + ReLU; names conv.*, bn.*."""

    def __init__(self, cin, cout, kernel_size=3, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class DemoNet(nn.Module):
    """The demo network (see the module docstring); forward(x, True) also returns the maps by glimpse name."""

    def __init__(self, nonlocal_block=True):
        super().__init__()
        self.stem = ConvBnAct(3, 16, stride=2)
        self.layer1 = tm.BasicBlock(16, 16, ratio=4)
        self.sk = tm.SKConv(16, M=2, G=1, r=2, L=8)
        self.layer2 = tm.BasicBlock(16, 32, stride=2, ratio=4)
        self.nl = tm.NonLocal(32, sub_sample=True) if nonlocal_block else None
        self.fc = nn.Linear(32, len(data.SHAPES))
        self.spatial_logits = None  # layer2's pre-sigmoid spatial map, for the auxiliary loss
        self.layer2.sa.conv.register_forward_hook(lambda _m, _i, out: setattr(self, "spatial_logits", out))

    def layers(self):
        """The `layers` list of the glimpse.network metadata."""
        layers = [
            {"arch": "ConvBnAct", "prefix": "stem.", "args": ["stride=2"]},
            {"arch": "BasicBlock", "prefix": "layer1."},
            {"arch": "SKConv", "prefix": "sk."},
            {"arch": "BasicBlock", "prefix": "layer2.", "args": ["stride=2"]},
        ]
        if self.nl is not None:
            layers.append({"arch": "NonLocal", "prefix": "nl.", "args": ["sub_sample=true"]})
        return layers + [{"arch": "GlobalAvgPool"}, {"arch": "Linear", "prefix": "fc."}]

    def forward(self, x, return_maps=False):
        maps = {}
        x = self.stem(x)
        for name in ("layer1", "sk", "layer2", "nl"):
            block = getattr(self, name)
            if block is not None:
                x, m = block(x, return_maps=True)
                maps.update({f"{name}.{k}": v for k, v in m.items()})
        logits = self.fc(x.mean(dim=(2, 3)))
        return (logits, maps) if return_maps else logits


def to_input(images, mean, std):
    """uint8 (N, H, W, 3) -> normalised float (N, 3, H, W), as glimpse's model loader expects."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - mean[None, :, None, None]) / std[None, :, None, None]


def box_cells(boxes, grid, scale):
    """(N, 1, grid, grid) bool: the map cells whose centres ((j + 0.5) * scale pixels) lie in the box."""
    centres = (torch.arange(grid) + 0.5) * scale
    b = torch.as_tensor(boxes, dtype=torch.float32)
    inside_x = (centres[None, :] >= b[:, 0:1]) & (centres[None, :] < b[:, 2:3])  # (N, grid) columns
    inside_y = (centres[None, :] >= b[:, 1:2]) & (centres[None, :] < b[:, 3:4])  # (N, grid) rows
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]


def pointing_hits(spatial, boxes):
    """Per image: is the peak of the (N, 1, h, w) map (first maximum, row-major) inside the box?"""
    n, _, h, w = spatial.shape
    scale = data.SIZE / w
    peak = spatial.reshape(n, -1).argmax(dim=1)
    cells = box_cells(boxes, h, scale).reshape(n, -1)
    return cells[torch.arange(n), peak]


@torch.no_grad()
def evaluate(model, x, labels, boxes, batch=250):
    """Accuracy and pointing-game rate (layer2.spatial) over a set, in eval mode."""
    model.eval()
    correct = hits = 0
    for i in range(0, len(x), batch):
        logits, maps = model(x[i:i + batch], return_maps=True)
        correct += (logits.argmax(1) == torch.as_tensor(labels[i:i + batch])).sum().item()
        hits += pointing_hits(maps["layer2.spatial"], boxes[i:i + batch]).sum().item()
    return correct / len(x), hits / len(x)


def load_heldout():
    """The committed held-out PNGs (examples/demo/heldout), as the Rust test reads them."""
    entries = json.loads((data.DEMO / "heldout" / "labels.json").read_text())
    images = np.stack([np.asarray(Image.open(data.DEMO / "heldout" / e["file"]).convert("RGB")) for e in entries])
    return images, np.array([e["label"] for e in entries]), np.array([e["box"] for e in entries])


def train(model, x, labels, boxes, args):
    labels, boxes = torch.as_tensor(labels), torch.as_tensor(boxes)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * (len(x) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(0)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = aux_total = 0.0
        for i in range(len(x) // args.batch):
            idx = order[i * args.batch:(i + 1) * args.batch]
            xb, yb, bb = x[idx], labels[idx], boxes[idx].clone()
            flip = torch.rand(len(idx), generator=gen) < 0.5  # mirror half the batch (labels are symmetric)
            xb[flip] = xb[flip].flip(-1)
            bb[flip, 0], bb[flip, 2] = data.SIZE - bb[flip, 2], data.SIZE - bb[flip, 0]
            loss = F.cross_entropy(model(xb), yb)
            total += loss.item()
            if args.aux > 0:
                logits = model.spatial_logits.flatten(1)  # (N, 16 * 16)
                cells = box_cells(bb, model.spatial_logits.shape[-1], MAP_SCALE).flatten(1)
                in_box = torch.logsumexp(logits.masked_fill(~cells, -1e9), dim=1)
                aux = (torch.logsumexp(logits, dim=1) - in_box).mean()
                # Keep logits below LOGIT_CAP: past about 17 the float32 sigmoid map saturates to 1.0 and
                # saturated cells tie for the peak, in or out of the box.
                aux = aux + (F.relu(logits - LOGIT_CAP) ** 2).mean()
                aux_total += aux.item()
                loss = loss + args.aux * aux
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        n = len(x) // args.batch
        print(f"epoch {epoch + 1}: loss {total / n:.4f} aux {aux_total / n:.4f} ({time.time() - start:.0f} s)")


def export(model, mean, std):
    """Writes MODEL and returns the tensors saved."""
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items() if v.is_floating_point()}
    network = {
        "name": "demo",
        "input": [3, data.SIZE, data.SIZE],
        "layers": model.layers(),
        "labels": list(data.SHAPES),
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
    }
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(MODEL), metadata={NETWORK_KEY: json.dumps(network)})
    return network


def check_export(model, x, nonlocal_block):
    """Rebuilds the network from the exported file alone; its logits and maps must equal the trained model's."""
    from safetensors import safe_open

    with safe_open(str(MODEL), "pt") as f:
        network = json.loads(f.metadata()[NETWORK_KEY])
    fresh = DemoNet(nonlocal_block)
    missing, unexpected = fresh.load_state_dict(load_file(str(MODEL)), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    assert fresh.layers() == network["layers"]
    mean, std = torch.tensor(network["mean"]), torch.tensor(network["std"])
    model.eval()
    fresh.eval()
    with torch.no_grad():
        want, want_maps = model(x, return_maps=True)
        got, got_maps = fresh(x, return_maps=True)
    assert torch.equal(got, want), "logits differ after export"
    assert got_maps.keys() == want_maps.keys()
    for k in want_maps:
        assert torch.equal(got_maps[k], want_maps[k]), f"map {k} differs after export"
    return mean, std


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=12000, help="training images (seed TRAIN_SEED)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--aux", type=float, default=0.5, help="weight of the pointing loss on layer2.spatial")
    parser.add_argument("--no-nonlocal", dest="nonlocal_block", action="store_false")
    parser.add_argument("--no-export", dest="export", action="store_false")
    args = parser.parse_args()
    torch.set_num_threads(1)  # on a shared 2-core machine, 2 OpenMP threads ran 10x slower than 1
    torch.manual_seed(0)

    images, labels, boxes = data.dataset(args.train, data.TRAIN_SEED)
    v_images, v_labels, v_boxes = data.dataset(1000, data.VALID_SEED)
    h_images, h_labels, h_boxes = load_heldout()
    pixels = torch.from_numpy(images).float().div(255).reshape(-1, 3)
    mean, std = pixels.mean(0), pixels.std(0)
    x, vx, hx = (to_input(i, mean, std) for i in (images, v_images, h_images))

    model = DemoNet(args.nonlocal_block)
    params = sum(p.numel() for p in model.parameters())
    print(f"{params} parameters; {args.train} training images; aux weight {args.aux}")
    train(model, x, labels, boxes, args)
    for name, (xs, ls, bs) in {"validation (1000)": (vx, v_labels, v_boxes),
                               "held-out (200 PNGs)": (hx, h_labels, h_boxes)}.items():
        acc, point = evaluate(model, xs, ls, bs)
        print(f"{name}: accuracy {acc:.1%}, pointing game (layer2.spatial) {point:.1%}")
    if not args.export:
        return
    network = export(model, mean, std)
    mean, std = check_export(model, vx[:100], args.nonlocal_block)
    acc, point = evaluate(model, to_input(h_images, mean, std), h_labels, h_boxes)  # with the stored mean/std
    print(f"exported {MODEL} ({MODEL.stat().st_size / 1e3:.0f} kB): {json.dumps(network['layers'])}")
    print(f"held-out with the exported normalisation: accuracy {acc:.1%}, pointing game {point:.1%}")


if __name__ == "__main__":
    main()
