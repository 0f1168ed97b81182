"""Synthetic "odd one out" images for glimpse's bundled demo model.

Each image shows 5 to 8 shapes (circle, square, triangle) on a dark, noisy
background. All shapes but one share a colour; exactly one, the *odd one out*,
has a clearly different colour (its hue is at least 120 degrees away). The label
is the odd object's shape, and its bounding box is known:

    label = SHAPES.index(shape of the odd-coloured object)   # 0 circle, 1 square, 2 triangle

Distractor shapes are drawn from all three classes, so the label cannot be read
off the image as a whole (say, from how much "triangle" there is): a model has
to find the odd object first and then look at its shape. That is the point of
the demo: the attention maps should light up on that object.

Scenes are described in unit coordinates and rendered at any size (64 x 64 for
the model, larger for the demo pictures) with anti-aliased edges. Everything is
drawn from `numpy.random.default_rng(seed)`, so a seed gives the same images on
every run.

Commands (from the repository root; the environment of tools/requirements.txt,
or any Python with numpy and Pillow):

    python tools/demo_data.py heldout   # examples/demo/heldout/: 200 PNGs + labels.json (seed HELDOUT_SEED)
    python tools/demo_data.py images    # examples/demo/images/: 8 PNGs at 128 x 128 (seed IMAGES_SEED)

labels.json: a list of {"file", "label" (index into SHAPES), "shape", "box"},
box = [x0, y0, x1, y1] in pixels of that image: the odd object covers pixel
columns x0 .. x1 - 1 and rows y0 .. y1 - 1, so a point (x, y) in pixel units
(pixel (c, r) spans [c, c + 1) x [r, r + 1)) is inside when x0 <= x < x1 and
y0 <= y < y1.
"""

import colorsys
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SHAPES = ("circle", "square", "triangle")
SIZE = 64  # the model's input size
TRAIN_SEED = 1  # tools/train_demo.py trains on this seed and validates on VALID_SEED
VALID_SEED = 3
HELDOUT_SEED = 2  # the held-out set the Rust test (tests/demo.rs) scores
IMAGES_SEED = 4
NOISE_GRID = 32  # background noise is one value per 2 x 2 pixels at 64 x 64: keeps the PNGs small
ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"


@dataclass
class Obj:
    """One shape: centre (cx, cy) and radius r in unit coordinates, RGB in [0, 1]."""

    shape: str
    cx: float
    cy: float
    r: float
    rgb: tuple


@dataclass
class Scene:
    """An image before rendering: background colour, noise field, the objects, the odd one's index."""

    background: np.ndarray  # (3,) RGB
    noise: np.ndarray  # (NOISE_GRID, NOISE_GRID) offsets added to every channel
    objects: list
    odd: int


def hsv(h, s, v):
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def random_scene(rng):
    """Draws one scene: 5-8 non-overlapping objects, one of them the odd colour."""
    count = int(rng.integers(5, 9))
    base_hue = rng.random()
    distractor = hsv(base_hue, rng.uniform(0.55, 1.0), rng.uniform(0.7, 1.0))
    odd_colour = hsv(base_hue + rng.uniform(1 / 3, 2 / 3), rng.uniform(0.55, 1.0), rng.uniform(0.7, 1.0))
    objects = []
    while len(objects) < count:
        # Radius 4.5 to 7 pixels at 64 x 64; rejection-sample positions that keep a gap.
        r = rng.uniform(4.5, 7.0) / SIZE
        cx, cy = rng.uniform(r + 1.5 / SIZE, 1 - r - 1.5 / SIZE, size=2)
        if all(np.hypot(cx - o.cx, cy - o.cy) > r + o.r + 2.5 / SIZE for o in objects):
            objects.append(Obj(SHAPES[int(rng.integers(3))], cx, cy, r, distractor))
        elif rng.random() < 0.01:  # crowded: start over rather than loop for long
            objects = []
    odd = int(rng.integers(count))
    objects[odd].rgb = odd_colour
    background = np.array(hsv(rng.random(), rng.uniform(0, 0.4), rng.uniform(0.1, 0.35)))
    noise = rng.normal(0, 0.05, size=(NOISE_GRID, NOISE_GRID))
    return Scene(background, noise, objects, odd)


def coverage(obj, xs, ys, size):
    """Fraction of each pixel covered by `obj` (anti-aliased by a one-pixel ramp on the signed distance)."""
    dx, dy = (xs - obj.cx) * size, (ys - obj.cy) * size  # pixel units
    r = obj.r * size
    if obj.shape == "circle":
        sdf = np.hypot(dx, dy) - r
    elif obj.shape == "square":
        sdf = np.maximum(abs(dx), abs(dy)) - 0.85 * r  # about the circle's area
    else:  # upward equilateral triangle, centroid at the centre: three half-planes
        k = 0.6 * r  # inradius (circumradius 1.2 r)
        sdf = np.maximum.reduce([dy - k, (-dy * 0.5 + dx * 0.866) - k, (-dy * 0.5 - dx * 0.866) - k])
    return np.clip(0.5 - sdf, 0.0, 1.0)


def render(scene, size=SIZE):
    """The scene as a (size, size, 3) uint8 image and the odd object's box [x0, y0, x1, y1] in pixels."""
    xs = (np.arange(size) + 0.5) / size  # pixel centres in unit coordinates
    xs, ys = np.meshgrid(xs, xs)
    reps = size // NOISE_GRID
    noise = np.kron(scene.noise, np.ones((reps, reps))) if reps > 1 else scene.noise
    img = np.clip(scene.background[None, None, :] + noise[:, :, None], 0, 1)
    box = None
    for i, obj in enumerate(scene.objects):
        a = coverage(obj, xs, ys, size)[:, :, None]
        img = img * (1 - a) + np.array(obj.rgb)[None, None, :] * a
        if i == scene.odd:
            rows, cols = np.nonzero(a[:, :, 0] > 0)
            box = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    return (img * 255 + 0.5).astype(np.uint8), box


def dataset(n, seed, size=SIZE):
    """n images from `seed`: uint8 images (n, size, size, 3), labels (n,), boxes (n, 4)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    boxes = np.empty((n, 4), np.int64)
    for i in range(n):
        scene = random_scene(rng)
        images[i], boxes[i] = render(scene, size)
        labels[i] = SHAPES.index(scene.objects[scene.odd].shape)
    return images, labels, boxes


def write_set(out, n, seed, size):
    """Writes n PNGs and labels.json to `out` (replacing what was there)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    images, labels, boxes = dataset(n, seed, size)
    entries = []
    for i in range(n):
        name = f"{i:03d}_{SHAPES[labels[i]]}.png"
        Image.fromarray(images[i]).save(out / name, optimize=True)
        entries.append({"file": name, "label": int(labels[i]), "shape": SHAPES[labels[i]], "box": boxes[i].tolist()})
    lines = ",\n".join(" " + json.dumps(e) for e in entries)  # one image per line
    (out / "labels.json").write_text(f"[\n{lines}\n]\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"{n} images ({size} x {size}, seed {seed}) in {out}: {total / 1e3:.0f} kB")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "heldout":
        write_set(DEMO / "heldout", 200, HELDOUT_SEED, SIZE)
    elif what == "images":
        write_set(DEMO / "images", 8, IMAGES_SEED, 128)
    else:
        sys.exit("usage: demo_data.py heldout|images")


if __name__ == "__main__":
    main()
