#!/usr/bin/env python3
"""The workloads of `glimpse bench` in PyTorch and timm, written in the same JSON schema.

    python tools/bench_torch.py --json torch.json [--device cpu|cuda] [--suite ops|blocks|networks|all]
                                [--filter TEXT] [--batch 8] [--repeat 10]
    glimpse bench --compare torch.json

Same workload names, shapes and variants as glimpse (see BENCHMARKS.md), so the
compare matches them row by row: ops rows use glimpse's variant names ("auto",
"channel", ...), Non-local attention has "unfused" (the materialised softmax
matrix) and "fused" (torch's scaled_dot_product_attention), and blocks run the
timm / tutorial modules in eval mode as variant "eager" (matched with glimpse's
fused plan), and networks do the same for whole timm models with random weights
(skresnet18, skresnext50_32x4d, resnet50 with CBAM) at 1x3x224x224 and
BATCHx3x224x224. BatchNorm is folded into the preceding conv for the single-op
conv2d, as glimpse folds it.

Timing: inference mode, warm-up runs, then repeats timed with perf_counter
around the call plus a device sync (torch.cuda.synchronize on CUDA); median, min
and max. Big workloads get fewer repeats (the same 3 s budget as glimpse).
PyTorch is the reference here, so rows carry no error against it.

Environment: /work/main/.venv (torch 2.15, timm 1.0.31); tools/tutorial_modules.py
provides SKConv, BasicBlock and NonLocal.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import timm
from timm.layers.cbam import CbamModule
from timm.layers.non_local_attn import NonLocalAttn
from timm.layers.selective_kernel import SelectiveKernel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial_modules as tm  # noqa: E402

SCHEMA = "glimpse-bench/1"
C, H, W = 256, 56, 56
STAGES = [(256, 56), (512, 28), (1024, 14)]
BUDGET_S = 3.0


def rand(*shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, device=DEVICE) * (hi - lo) + lo


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn):
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - start) * 1e3


def measure(fn, repeat):
    """Cold run, one warm-up when cheap, then repeats within the time budget."""
    cold = timed(fn)
    run = cold if cold > 1e3 else timed(fn)
    floor = 3 if run <= 1e3 else 2 if run <= 1e4 else 1
    reps = min(repeat, max(floor, int(BUDGET_S * 1e3 / max(run, 1e-3))))
    times = [timed(fn) for _ in range(reps)]
    return cold, times


# Each workload: (suite, name, shape, variant, make) where make() returns (fn, flops, bytes);
# flops and bytes follow glimpse's cost models where they are simple (0 elsewhere).
def ops_workloads(batch):
    fmap = f"1x{C}x{H}x{W}"
    nbytes = 4 * C * H * W

    def conv2d():
        x, w = rand(1, C, H, W), rand(C, C, 3, 3) / (9 * C) ** 0.5
        b = rand(C, lo=-0.1, hi=0.1)
        return (lambda: F.relu(F.conv2d(x, w, b, padding=1))), 2 * C * C * 9 * H * W, nbytes * 2 + w.numel() * 4

    def matmul(n):
        def make():
            a, b = rand(n, n), rand(n, n)
            return (lambda: a @ b), 2 * n**3, 12 * n * n
        return make

    def global_pool():
        x = rand(1, C, H, W)
        return (lambda: torch.stack([x.mean((2, 3)), x.amax((2, 3))], 1)), 2 * C * H * W, nbytes

    def channel_pool():
        x = rand(1, C, H, W)
        return (lambda: torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)), 2 * C * H * W, nbytes

    def gate(mode):
        def make():
            x = rand(1, C, H, W)
            g = rand(1, C, 1, 1, lo=0) if mode == "channel" else rand(1, 1, H, W, lo=0)
            return (lambda: x * g), C * H * W, 2 * nbytes
        return make

    def softmax():
        x = rand(1, 3136, 784, lo=-8, hi=8)
        return (lambda: torch.softmax(x, -1)), 0, 8 * x.numel()

    def weighted_sum():
        b0, b1, a = rand(1, C, H, W), rand(1, C, H, W), rand(1, 2, C, lo=0)
        return (lambda: b0 * a[:, 0, :, None, None] + b1 * a[:, 1, :, None, None]), 0, 3 * nbytes

    def cbam_channel_mlp():
        pooled, fc1, fc2 = rand(1, 2, C), rand(C // 16, C) / C**0.5, rand(C, C // 16) / 4

        def fn():
            h = F.linear(F.relu(F.linear(pooled, fc1)), fc2)
            return torch.sigmoid(h[:, 0] + h[:, 1])
        return fn, 0, 0

    def cbam_gate_pool():
        x, ca = rand(1, C, H, W), rand(1, C, 1, 1, lo=0)

        def fn():
            g = x * ca
            return torch.cat([g.mean(1, keepdim=True), g.amax(1, keepdim=True)], 1)
        return fn, 0, nbytes

    def cbam_spatial_gate():
        x, ca, pooled = rand(1, C, H, W), rand(1, C, 1, 1, lo=0), rand(1, 2, H, W)
        w, scale, shift = rand(1, 2, 7, 7) / 98**0.5, 1.2, 0.1
        return (lambda: x * ca * torch.sigmoid(F.conv2d(pooled, w, padding=3) * scale + shift)), 0, 2 * nbytes

    def sk_sum_pool():
        b0, b1 = rand(1, C, H, W), rand(1, C, H, W)
        return (lambda: (b0 + b1).mean((2, 3))), 0, 2 * nbytes

    def sk_attention():
        s, fc, sel = rand(1, C, lo=0), rand(32, C) / C**0.5, rand(2 * C, 32) / 32**0.5
        scale, shift = rand(32, lo=0.5, hi=1.5), rand(32, lo=-0.1, hi=0.1)
        return (lambda: torch.softmax(F.linear(F.relu(F.linear(s, fc) * scale + shift), sel).view(1, 2, C), 1)), 0, 0

    def nonlocal_attention(n, fused):
        def make():
            # theta, phi, g as [N, D, HW] (glimpse's layout); attention over pixels.
            theta, phi, g = (rand(n, 32, 3136, lo=-3, hi=3) for _ in range(3))
            scale = C**-0.5
            q, k, v = theta.transpose(1, 2), phi.transpose(1, 2), g.transpose(1, 2)
            if fused:
                fn = lambda: F.scaled_dot_product_attention(q, k, v, scale=scale)  # noqa: E731
            else:
                fn = lambda: torch.softmax(q @ phi * scale, -1) @ v  # noqa: E731
            return fn, 4 * n * 3136 * 3136 * 32, 16 * n * 32 * 3136
        return make

    items = [
        ("conv2d", fmap, "auto", conv2d),
        ("matmul", "512x512x512", "auto", matmul(512)),
        ("matmul", "1024x1024x1024", "auto", matmul(1024)),
        ("global_pool", fmap, "auto", global_pool),
        ("channel_pool", fmap, "auto", channel_pool),
        ("gate", fmap, "channel", gate("channel")),
        ("gate", fmap, "pixel", gate("pixel")),
        ("softmax", "1x3136x784", "auto", softmax),
        ("weighted_sum", fmap, "auto", weighted_sum),
        ("cbam_channel_mlp", f"1x{C}", "auto", cbam_channel_mlp),
        ("cbam_gate_pool", fmap, "auto", cbam_gate_pool),
        ("cbam_spatial_gate", fmap, "auto", cbam_spatial_gate),
        ("sk_sum_pool", fmap, "auto", sk_sum_pool),
        ("sk_attention", f"1x{C}", "auto", sk_attention),
    ]
    for n in sorted({1, batch}):
        for fused in (True, False):
            items.append(("nonlocal_attention", f"{n}x32x3136", "fused" if fused else "unfused",
                          nonlocal_attention(n, fused)))
    return [("ops",) + item for item in items]


def block_workloads(batch):
    modules = {
        "timm.CbamModule": lambda c: CbamModule(c),
        "timm.SelectiveKernel": lambda c: SelectiveKernel(c, c),
        "SKConv": lambda c: tm.SKConv(c, M=2, G=32, r=16, L=32),
        "BasicBlock": lambda c: tm.BasicBlock(c, c),
        "NonLocal": lambda c: tm.NonLocal(c),
        "timm.NonLocalAttn": lambda c: NonLocalAttn(c),
    }
    items = []
    for name, ctor in modules.items():
        for c, hw in STAGES:
            for n in sorted({1, batch}):
                def make(ctor=ctor, shape=(n, c, hw, hw)):
                    module = ctor(shape[1]).to(DEVICE).eval()
                    x = rand(*shape)
                    return (lambda: module(x)), 0, 0
                items.append(("blocks", name, f"{n}x{c}x{hw}x{hw}", "eager", make))
    return items


def network_workloads(batch):
    models = {
        "timm.skresnet18": lambda: timm.create_model("skresnet18", pretrained=False),
        "timm.skresnext50_32x4d": lambda: timm.create_model("skresnext50_32x4d", pretrained=False),
        "timm.resnet50_cbam": lambda: timm.create_model("resnet50", pretrained=False,
                                                        block_args=dict(attn_layer="cbam")),
    }
    items = []
    for name, ctor in models.items():
        for n in sorted({1, batch}):
            def make(ctor=ctor, shape=(n, 3, 224, 224)):
                model = ctor().to(DEVICE).eval()
                x = rand(*shape)
                return (lambda: model(x)), 0, 0
            items.append(("networks", name, f"{n}x3x224x224", "eager", make))
    return items


def ceilings():
    n = 16 << 20

    def stream():
        a, b, out = rand(n), rand(n), torch.empty(n, device=DEVICE)
        return (lambda: torch.add(a, b, out=out)), n, 12 * n

    def gemm():
        a, b = rand(512, 512), rand(512, 512)
        return (lambda: a @ b), 2 * 512**3, 12 * 512 * 512

    return [("ceiling", "eltwise", str(n), "add", stream), ("ceiling", "matmul", "512x512x512", "auto", gemm)]


def row(suite, name, shape, variant):
    return {"name": name, "suite": suite, "shape": shape, "variant": variant, "status": "ok", "reason": "",
            "kernels": "", "dispatches": None, "timing": "wall-sync", "repeats": 0, "median_ms": None,
            "min_ms": None, "max_ms": None, "wall_median_ms": None, "cold_ms": None, "flops": 0, "bytes": 0,
            "gflops": None, "gbps": None, "intensity": None, "pct_compute": None, "pct_bandwidth": None,
            "pct_roofline": None, "max_error": None, "rel_l2": None, "checked_on": "", "check_s": None,
            "speedup_vs_unfused": None}


def run(item, repeat):
    suite, name, shape, variant, make = item
    r = row(suite, name, shape, variant)
    try:
        with torch.inference_mode():
            fn, flops, nbytes = make()
            cold, times = measure(fn, repeat)
    except (RuntimeError, MemoryError) as e:  # out of memory, unsupported shapes
        r.update(status="error", reason=str(e).splitlines()[0])
        return r
    median = statistics.median(times)
    r.update(repeats=len(times), median_ms=median, min_ms=min(times), max_ms=max(times), wall_median_ms=median,
             cold_ms=cold, flops=flops, bytes=nbytes)
    if flops:
        r["gflops"] = flops / median / 1e6
    if nbytes:
        r["gbps"] = nbytes / median / 1e6
    if flops and nbytes:
        r["intensity"] = flops / nbytes
    return r


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def main():
    global DEVICE
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--suite", choices=["ops", "blocks", "networks", "all"], default="all")
    p.add_argument("--filter", default=None, help="only workloads whose 'name shape variant' contains this")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", type=Path, required=True)
    a = p.parse_args()
    if a.batch < 1 or a.repeat < 1:
        p.error("--batch and --repeat must be at least 1")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    if not a.json.parent.is_dir():
        p.error(f"--json {a.json}: the folder {a.json.parent} does not exist")
    if a.threads:
        torch.set_num_threads(a.threads)
    DEVICE = torch.device(a.device)
    torch.manual_seed(0)

    items = []
    if a.suite in ("ops", "all"):
        items += ops_workloads(a.batch)
    if a.suite in ("blocks", "all"):
        items += block_workloads(a.batch)
    if a.suite in ("networks", "all"):
        items += network_workloads(a.batch)
    if a.filter:
        chosen = [i for i in items if a.filter in f"{i[1]} {i[2]} {i[3]}"]
        if not chosen:
            names = ", ".join(dict.fromkeys(i[1] for i in items))
            p.error(f"no workload matches --filter '{a.filter}'; workloads of this suite: {names}")
        items = chosen

    rows = []
    for item in ceilings() + items:
        r = run(item, a.repeat)
        shown = f"{r['median_ms']:.3f} ms" if r["status"] == "ok" else f"{r['status']}: {r['reason']}"
        print(f"{r['name']} {r['shape']} {r['variant']}: {shown}", file=sys.stderr, flush=True)
        rows.append(r)

    ok = [r for r in rows if r["status"] == "ok"]
    stream = next((r for r in ok if r["suite"] == "ceiling" and r["name"] == "eltwise"), None)
    gemms = [r for r in ok if r["name"] == "matmul" and r["gflops"]]
    best = max(gemms, key=lambda r: r["gflops"], default=None)
    ceil = {"stream_gbps": stream and stream["gbps"], "gemm_gflops": best and best["gflops"],
            "source": "stream: torch.add over 64 MiB tensors; compute: best torch matmul"}
    for r in ok:
        if r["gflops"] and ceil["gemm_gflops"]:
            r["pct_compute"] = 100 * r["gflops"] / ceil["gemm_gflops"]
        if r["gbps"] and ceil["stream_gbps"]:
            r["pct_bandwidth"] = 100 * r["gbps"] / ceil["stream_gbps"]

    if a.device == "cuda":
        adapter = {"name": torch.cuda.get_device_name(), "backend": "pytorch-cuda",
                   "driver": f"CUDA {torch.version.cuda}", "device_type": "DiscreteGpu"}
    else:
        adapter = {"name": cpu_name(), "backend": "pytorch-cpu",
                   "driver": f"{torch.get_num_threads()} threads", "device_type": "Cpu"}
    report = {
        "schema": SCHEMA,
        "tool": "pytorch",
        "version": f"torch {torch.__version__}, timm {timm.__version__}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python " + " ".join(sys.argv),
        "adapter": adapter,
        "host": f"{platform.system().lower()} {platform.machine()}, {os.cpu_count()} logical CPUs",
        "ceilings": ceil,
        "workloads": rows,
    }
    tmp = a.json.with_name(f".{a.json.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(a.json)
    print(f"wrote {a.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
