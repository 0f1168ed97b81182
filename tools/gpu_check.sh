#!/usr/bin/env bash
# tools/gpu_check.sh: the prepared check for a machine with an NVIDIA GPU, within 8 minutes.
#
#   tools/gpu_check.sh [OUT_DIR]        (default: target/gpu_check, created)
#
# Steps, each under `timeout` so the whole run ends inside the 8-minute budget (480 s) however a
# step behaves; a step that fails or times out is recorded and the later steps still run:
#   1. info      `glimpse info`: the adapters and the chosen one (must not be a CPU adapter:
#                set WGPU_ADAPTER_NAME to pick the NVIDIA one where several are found)
#   2. build     `cargo build --all-targets` and the test binaries (the dev profile is optimised)
#   3. torch     `tools/bench_torch.py --device cuda --suite all --batch 8` -> torch_cuda.json
#                (needs PyTorch with CUDA and timm: $PYTHON, default .venv/bin/python or python3)
#   4. bench     `glimpse bench --suite all --batch 8 --json glimpse.json --compare torch_cuda.json`
#                -> glimpse.json, bench.txt (its table, ratios against PyTorch where step 3 ran)
#   5. tests     `cargo test` with GLIMPSE_REQUIRE_GPU=1 (a missing adapter fails, never skips):
#                every kernel against its CPU reference on this GPU (the CPU references are the
#                slow part; a timeout is recorded as such, not as a pass)
#   6. summary   summary.txt: date, device, each step's status and seconds, the bench table's
#                GPU rows; the file to paste into BENCHMARKS.md ("GPU check" section)
# Written without a GPU machine at hand (none was lent to the session that wrote it): read and
# checked by hand, not yet run. Budget: 480 s in all; the per-step limits below sum to 470, and a
# step never runs past what is left of the 480.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-target/gpu_check}"
mkdir -p "$OUT"
export CARGO_TERM_COLOR=never
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
GLIMPSE=target/debug/glimpse
START=$(date +%s)
BUDGET="${GPU_CHECK_BUDGET:-480}" # seconds in all; smaller only to try the script out
STATUS="$OUT/status.txt"
: > "$STATUS"

# run NAME LIMIT_S COMMAND...: runs COMMAND under `timeout LIMIT_S` (never past the 480 s budget),
# logs to $OUT/NAME.log and records "NAME: ok|failed (rc)|timed out after LIMIT_S s, SECONDS s".
run() {
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET - ($(date +%s) - START)))
    if [ "$limit" -gt "$left" ]; then limit="$left"; fi
    if [ "$limit" -le 0 ]; then
        echo "$name: skipped, the $BUDGET s budget is spent" | tee -a "$STATUS"
        return 1
    fi
    echo "== $name (limit $limit s, $(date -u +%H:%M:%S))"
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    local took=$(($(date +%s) - t0))
    case "$rc" in
        0) echo "$name: ok, $took s" | tee -a "$STATUS" ;;
        124 | 137) echo "$name: timed out after $limit s" | tee -a "$STATUS" ;;
        *) echo "$name: failed (exit $rc), $took s; see $OUT/$name.log" | tee -a "$STATUS" ;;
    esac
    return "$rc"
}

# The build first: info needs the binary.
run build 180 bash -c 'cargo build --locked --all-targets && cargo test --locked --no-run'
run info 10 "$GLIMPSE" info
if grep -q "^chosen: .*Cpu" "$OUT/info.log" 2>/dev/null; then
    echo "info: the chosen adapter is a CPU device: these are not GPU results" | tee -a "$STATUS"
fi
COMPARE=()
if run torch 40 "$PYTHON" tools/bench_torch.py --device cuda --suite all --batch 8 --repeat 10 \
    --json "$OUT/torch_cuda.json"; then
    COMPARE=(--compare "$OUT/torch_cuda.json")
fi
run bench 130 "$GLIMPSE" bench --suite all --batch 8 --seed 1 --repeat 10 --json "$OUT/glimpse.json" \
    ${COMPARE[@]+"${COMPARE[@]}"}
cp "$OUT/bench.log" "$OUT/bench.txt" 2>/dev/null
run tests 110 env GLIMPSE_REQUIRE_GPU=1 cargo test --locked

{
    echo "glimpse GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    grep -m1 "^chosen:" "$OUT/info.log" 2>/dev/null || echo "chosen adapter: unknown (see info.log)"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    echo
    cat "$STATUS"
    echo "total: $(($(date +%s) - START)) s of the $BUDGET s budget"
    echo
    echo "glimpse bench --suite all --batch 8 (GPU timestamps; ratios against tools/bench_torch.py --device cuda where it ran):"
    if grep -q "^workload" "$OUT/bench.log" 2>/dev/null; then
        sed -n '/^workload/,$p' "$OUT/bench.log"
    else
        echo "(no bench table: see bench.log)"
    fi
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
# The exit status: 0 only when every step passed.
! grep -qv ": ok," "$STATUS"
