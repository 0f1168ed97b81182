"""Groups a `glimpse bench --suite convs --json X.json` report by kind of convolution.

    python3 tools/convs_by_kind.py X.json

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


def main(path):
    rows = [w for w in json.load(open(path))["workloads"] if w.get("pct_reference") is not None]
    best = max(w["reference_gflops"] for w in rows)
    groups = {}
    for w in rows:
        for key in ("all", "batch " + w["shape"].split("x")[0], kind(w)):
            groups.setdefault(key, []).append(w)
    print("| rows | >= 80% of the GEMM beside it | median | lowest | >= 80% of the run's fastest GEMM | median |")
    print("|---|---|---|---|---|---|")
    for key, ws in groups.items():
        p = [w["pct_reference"] for w in ws]
        q = [100 * w["gflops"] / best for w in ws]
        print(
            f"| {key} | {sum(x >= 80 for x in p)} / {len(p)} | {statistics.median(p):.0f}% | {min(p):.0f}% "
            f"| {sum(x >= 80 for x in q)} / {len(q)} | {statistics.median(q):.0f}% |"
        )
    print(f"fastest GEMM {best:.1f} GFLOP/s")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: convs_by_kind.py REPORT.json")
    main(sys.argv[1])
