"""Pictures for the `map` soak (BENCHMARKS.md, "Soak"): the demo's pictures resized,
mirrored, flipped and rotated into COUNT files (default 2,000), a third of them JPEG.

    .venv/bin/python tools/soak_pictures.py examples/demo/heldout examples/demo/images /tmp/soak/pics
"""

import argparse
import os

from PIL import Image, ImageOps

VARIANTS = [
    lambda im: im,
    ImageOps.mirror,
    ImageOps.flip,
    lambda im: im.rotate(90, expand=True),
    lambda im: im.resize((48, 48)),
    lambda im: im.resize((96, 96)),
    lambda im: im.resize((160, 120)),
    lambda im: ImageOps.mirror(im.resize((224, 224))),
    lambda im: im.resize((100, 300)),
    lambda im: ImageOps.flip(im.resize((256, 192))),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", help="folders of .png / .jpg pictures")
    parser.add_argument("out", help="folder to write (created)")
    parser.add_argument("--count", type=int, default=2000)
    a = parser.parse_args()
    os.makedirs(a.out, exist_ok=True)
    files = sorted(os.path.join(d, f) for d in a.sources for f in os.listdir(d) if f.endswith((".png", ".jpg")))
    n = 0
    for v, variant in enumerate(VARIANTS):
        for path in files:
            if n == a.count:
                break
            im = variant(Image.open(path).convert("RGB"))
            stem = os.path.splitext(os.path.basename(path))[0]
            im.save(os.path.join(a.out, f"{n:04d}_{stem}_v{v}{'.jpg' if n % 3 == 0 else '.png'}"))
            n += 1
    if n < a.count:
        raise SystemExit(f"only {n} pictures from {len(files)} sources; give more sources")
    print(n, "pictures in", a.out)


if __name__ == "__main__":
    main()
