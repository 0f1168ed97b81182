"""How far Winograd's larger tiles stray from a 3 x 3 conv in f32, against glimpse's op tolerance.

    .venv/bin/python tools/winograd_error.py [--seed 0] [--size N] [--channels C ...]
        [--out-channels K] [--weights he|uniform] [--accumulate einsum|sequential]

For F(m x m, 3 x 3) with m = 2 (what glimpse runs), 3 and 4, over random inputs in [-1, 1) and
He-scaled weights (`--weights uniform`: in [-1, 1), as glimpse's test cases draw them), every
transform and product in f32 (numpy; `--accumulate sequential` sums the products over the input
channels one at a time in f32, as a GEMM lane does, instead of numpy's pairwise einsum), on N x N
maps (default 12, 6 at 512 channels) with K output channels (default 16), against the direct
conv in f64:
prints the worst element's error as a multiple of what check::OP_TOLERANCE allows it,
|got - want| <= 1e-5 (|want| + rms(want)), and the relative L2 error. Above 1 a kernel would fail
glimpse's checks. The matrices come from the usual Cook-Toom construction (points 0, 1, -1, 2,
-2 and infinity; Lavin and Gray 2015), checked on a 1-D correlation before use.
"""
import argparse

import numpy as np

TOLERANCE = 1e-5  # check::OP_TOLERANCE
POINTS = {2: [0, 1, -1], 3: [0, 1, -1, 2], 4: [0, 1, -1, 2, -2]}


def matrices(m, r=3):
    """A^T, G and B^T of F(m, r) over POINTS[m] and infinity."""
    n = m + r - 1

    def vandermonde(cols):
        v = np.zeros((n, cols))
        for j, p in enumerate(POINTS[m]):
            v[j] = [float(p) ** i for i in range(cols)]
        v[n - 1, cols - 1] = 1.0  # the point at infinity
        return v

    at, g, bt = vandermonde(m).T, vandermonde(r), np.linalg.inv(vandermonde(n)).T
    d, w = np.random.default_rng(1).random(n), np.random.default_rng(2).random(r)
    want = [sum(w[k] * d[i + k] for k in range(r)) for i in range(m)]
    assert np.allclose(at @ ((g @ w) * (bt @ d)), want), f"F({m}, {r}) does not correlate"
    return at, g, bt


def scores(m, channels, size, rng, out_channels=16, weights="he", accumulate="einsum"):
    at, g, bt = matrices(m)
    a = bt.shape[0]
    x = rng.uniform(-1, 1, (channels, size, size))
    shape = (out_channels, channels, 3, 3)
    w = rng.normal(0, np.sqrt(2 / (9 * channels)), shape) if weights == "he" else rng.uniform(-1, 1, shape)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    want = np.zeros((out_channels, size, size))
    for dy in range(3):
        for dx in range(3):
            want += np.einsum("kc,chw->khw", w[:, :, dy, dx], xp[:, dy:dy + size, dx:dx + size])
    f = np.float32
    u = np.einsum("ij,kcjl,ml->kcim", g.astype(f), w.astype(f), g.astype(f)).astype(f)
    tiles = np.pad(xp, ((0, 0), (0, a), (0, a))).astype(f)
    got = np.zeros((out_channels, size, size), f)
    for ty in range(0, size, m):
        for tx in range(0, size, m):
            v = np.einsum("ij,cjl,ml->cim", bt.astype(f), tiles[:, ty:ty + a, tx:tx + a], bt.astype(f)).astype(f)
            if accumulate == "einsum":
                prod = np.einsum("kcij,cij->kij", u, v).astype(f)
            else:
                prod = np.zeros((out_channels, a, a), f)
                for c in range(channels):
                    prod = (prod + u[:, c] * v[c]).astype(f)
            y = np.einsum("ij,kjl,ml->kim", at.astype(f), prod, at.astype(f)).astype(f)
            got[:, ty:ty + m, tx:tx + m] = y[:, :size - ty, :size - tx][:, :m, :m]
    rms = np.sqrt((want ** 2).mean())
    worst = (np.abs(got - want) / (TOLERANCE * (np.abs(want) + rms))).max()
    return worst, np.sqrt(((got - want) ** 2).sum() / (want ** 2).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, help="map size (default 12, 6 at 512 channels)")
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64, 256, 512])
    parser.add_argument("--out-channels", type=int, default=16)
    parser.add_argument("--weights", choices=["he", "uniform"], default="he")
    parser.add_argument("--accumulate", choices=["einsum", "sequential"], default="einsum")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| input channels | F(2x2, 3x3) | F(3x3, 3x3) | F(4x4, 3x3) |")
    print("|---|---|---|---|")
    for channels in args.channels:
        size = args.size or (12 if channels < 512 else 6)
        options = dict(out_channels=args.out_channels, weights=args.weights, accumulate=args.accumulate)
        cells = [scores(m, channels, size, rng, **options) for m in (2, 3, 4)]
        print(f"| {channels} | " + " | ".join(f"{s:.2f} ({l2:.1e})" for s, l2 in cells) + " |")
    print("worst element's error / the tolerance allowed it (relative L2 error); above 1 fails")


if __name__ == "__main__":
    main()
