"""Groups a `glimpse bench --suite convs --json X.json` report by kind of convolution.

    python3 tools/convs_by_kind.py X.json [Y.json ...] [--against OLD.json [OLD2.json ...]]

Several reports of the same suite (repeated runs of one binary) are merged row by row: each row's
share of the GEMM beside it, its rate, its time and the GEMM's rate are the median over the
reports. With --against (reports of another binary, run alternately), two more columns: each
group's median over its rows of the new time / the old, and of the new GEMM rate / the old.

Prints a Markdown table: for all rows, each batch and each kind (the stem, 3x3 by stride and
dilation, 1x1/2 downsamples, the stride-1 1x1 GEMMs by map size), how many rows reach 80% of the
512^3 GEMM timed beside them, the median and lowest share, and the same against the run's fastest
GEMM. Standard library only (BENCHMARKS.md quotes its tables).
"""
import json
import statistics
import sys


def kind(row):
    shape, kernel = row["shape"].split(" ")[:2]
    k, stride = kernel.split("/")
    if row["name"] == "conv1x1":
        dims = shape.split(">")[0].split("x")
        return f"1x1 GEMM, {dims[2]}x{dims[2]} maps" + (" (K = 64)" if dims[1] == "64" else "")
    if k == "7x7":
        return "stem 7x7/2"
    return f"{k}/{stride}" + (" d2" if len(row["shape"].split(" ")) > 2 else "")


def keys(rows):
    return [(w["name"], w["shape"]) for w in rows]


def merged(paths):
    """Each conv row of the reports, its share and rates the median over them."""
    runs = [[w for w in json.load(open(p))["workloads"] if w.get("pct_reference") is not None] for p in paths]
    for p, run in zip(paths, runs):
        if keys(run) != keys(runs[0]):
            sys.exit(f"{p}: not the same rows as {paths[0]}")
    rows = []
    for i, w in enumerate(runs[0]):
        row = dict(w)
        for field in ("pct_reference", "gflops", "reference_gflops", "median_ms"):
            row[field] = statistics.median(run[i][field] for run in runs)
        rows.append(row)
    return rows


def main(paths, against):
    rows = merged(paths)
    old = merged(against) if against else None
    if old is not None and keys(old) != keys(rows):
        sys.exit(f"{against[0]}: not the same rows as {paths[0]}")
    best = max(w["reference_gflops"] for w in rows)
    groups = {}
    for i, w in enumerate(rows):
        for key in ("all", "batch " + w["shape"].split("x")[0], kind(w)):
            groups.setdefault(key, []).append(i)
    header = "| rows | >= 80% of the GEMM beside it | median | lowest | >= 80% of the run's fastest GEMM | median |"
    print(header + (" time, new / old | GEMM rate, new / old |" if old else ""))
    print("|---|---|---|---|---|---|" + ("---|---|" if old else ""))
    for key, members in groups.items():
        p = [rows[i]["pct_reference"] for i in members]
        q = [100 * rows[i]["gflops"] / best for i in members]
        line = (
            f"| {key} | {sum(x >= 80 for x in p)} / {len(p)} | {statistics.median(p):.0f}% | {min(p):.0f}% "
            f"| {sum(x >= 80 for x in q)} / {len(q)} | {statistics.median(q):.0f}% |"
        )
        if old:
            t = statistics.median(rows[i]["median_ms"] / old[i]["median_ms"] for i in members)
            g = statistics.median(rows[i]["reference_gflops"] / old[i]["reference_gflops"] for i in members)
            line += f" {t:.2f}x | {g:.2f}x |"
        print(line)
    print(f"fastest GEMM {best:.1f} GFLOP/s")
    if old:
        ratio = sum(w["median_ms"] for w in rows) / sum(w["median_ms"] for w in old)
        print(f"summed row times, new / old: {ratio:.2f}x")


if __name__ == "__main__":
    args = sys.argv[1:]
    split = args.index("--against") if "--against" in args else len(args)
    new, old = args[:split], args[split + 1 :]
    if not new or (split < len(args) and not old):
        sys.exit("usage: convs_by_kind.py REPORT.json [REPORT.json ...] [--against OLD.json [OLD.json ...]]")
    main(new, old)
