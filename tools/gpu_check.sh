#!/usr/bin/env bash
# tools/gpu_check.sh: the prepared check for a machine with an NVIDIA GPU, within 8 minutes.
#
#   tools/gpu_bundle.sh                 (here, first: the lent GPU machines have no Rust toolchain
#                                        and no network; it builds the binaries into .gpu_check/)
#   tools/gpu_check.sh [OUT_DIR]        (there; default target/gpu_check, created), through the
#                                        device tool: run(command="bash tools/gpu_check.sh $OUT",
#                                        carry=[".gpu_check"], timeout_s=600)
#
# Steps, each under `timeout` so the whole run ends inside the 8-minute budget (480 s) however a
# step behaves; a step that fails or times out is recorded and the later steps still run:
#   1. setup     the binaries: unpacked from .gpu_check/bin.tar.xz (tools/gpu_bundle.sh, also on a
#                machine with Rust: the one way they are built); the Vulkan loader from
#                .gpu_check/debs where the image has none, NVIDIA's ICD named where the loader
#                would not find it, and the folder the tests were built in linked to this
#                checkout (they read tests/fixtures through it)
#   2. info      `glimpse info`: the adapters and the chosen one (must not be a CPU adapter: set
#                WGPU_ADAPTER_NAME to pick the NVIDIA one where several are found)
#   3. torch     `tools/bench_torch.py --device cuda --suite all --batch 8` -> torch_cuda.json
#                (PyTorch with CUDA and timm: $PYTHON, default .venv/bin/python, else python3)
#   4. bench     `glimpse bench --suite all --batch 8 --json glimpse.json --compare torch_cuda.json`
#                -> glimpse.json, bench.txt (its table, ratios against PyTorch where step 3 ran)
#   5. tests     the test binaries with GLIMPSE_REQUIRE_GPU=1 (a missing adapter fails, never
#                skips): every kernel against its CPU reference on this GPU, blocks and networks
#                against PyTorch's fixtures (the CPU references are the slow part; a timeout is
#                recorded as such, not as a pass) -> tests.log
#   6. summary   summary.txt: date, device, the bundle's commit, each step's status and seconds,
#                the bench table's rows; the file to paste into BENCHMARKS.md ("GPU check")
# OUT_DIR ends with at most 7 files (the device tool brings back 8): summary.txt, setup.log (setup
# and info), torch.log, torch_cuda.json, bench.txt, glimpse.json, tests.log.
# Tried on lavapipe from a copy of the tree without cargo on the PATH (BENCHMARKS.md, "GPU
# check"); not yet run on a GPU machine (none was lent to the sessions that wrote it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-target/gpu_check}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export CARGO_TERM_COLOR=never
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
BUNDLE=.gpu_check
BIN=target/gpu_check_bin
GLIMPSE="$BIN/glimpse"
START=$(date +%s)
BUDGET="${GPU_CHECK_BUDGET:-480}" # seconds in all; smaller only to try the script out
STATUS=$(mktemp)

# run NAME LOG LIMIT_S COMMAND...: runs COMMAND under `timeout LIMIT_S` (never past the budget),
# appends its output to $OUT/LOG and records "NAME: ok|failed (rc)|timed out after LIMIT_S s, SECONDS s".
run() {
    local name="$1" log="$OUT/$2" limit="$3"
    shift 3
    local left=$((BUDGET - ($(date +%s) - START)))
    if [ "$limit" -gt "$left" ]; then limit="$left"; fi
    if [ "$limit" -le 0 ]; then
        echo "$name: skipped, the $BUDGET s budget is spent" | tee -a "$STATUS"
        return 1
    fi
    echo "== $name (limit $limit s, $(date -u +%H:%M:%S))" | tee -a "$log"
    local t0 rc
    t0=$(date +%s)
    timeout --kill-after=5 "$limit" "$@" >> "$log" 2>&1
    rc=$?
    local took=$(($(date +%s) - t0))
    case "$rc" in
        0) echo "$name: ok, $took s" | tee -a "$STATUS" ;;
        124 | 137) echo "$name: timed out after $limit s" | tee -a "$STATUS" ;;
        *) echo "$name: failed (exit $rc), $took s; see $log" | tee -a "$STATUS" ;;
    esac
    return "$rc"
}

# The binaries into $BIN, from the bundle (tools/gpu_bundle.sh builds them: one way, here or on a
# machine with Rust).
setup_binaries() {
    rm -rf "$BIN"
    mkdir -p "$BIN"
    [ -f "$BUNDLE/bin.tar.xz" ] || { echo "no $BUNDLE/bin.tar.xz: run tools/gpu_bundle.sh first"; return 1; }
    cat "$BUNDLE/manifest"
    tar -C "$BIN" --strip-components=1 -xJf "$BUNDLE/bin.tar.xz" || return 1
    ls -l "$BIN"
}

# wgpu opens libvulkan.so.1; NVIDIA's driver is the loader's ICD. An image without the loader gets
# the bundle's package (root only: it unpacks into /).
setup_loader() {
    ldconfig -p | grep -q 'libvulkan\.so\.1' && return 0
    [ "$(id -u)" = 0 ] || { echo "no Vulkan loader, and not root to unpack $BUNDLE/debs"; return 1; }
    for f in "$BUNDLE"/debs/*.deb; do dpkg -x "$f" / || return 1; done
    ldconfig
    ldconfig -p | grep 'libvulkan\.so\.1' || { echo "still no libvulkan.so.1"; return 1; }
}

# The test binaries find tests/fixtures through the folder they were built in: linked to this
# checkout where that folder is missing here.
setup_fixtures() {
    local built_in
    built_in=$(sed -n 's/^built_in=//p' "$BUNDLE/manifest" 2> /dev/null)
    if [ -n "$built_in" ] && [ "$built_in" != "$PWD" ]; then
        if [ -e "$built_in" ]; then
            echo "$built_in exists here: the tests read its fixtures, not this checkout's"
        else
            mkdir -p "$(dirname "$built_in")" && ln -s "$PWD" "$built_in" && echo "linked $built_in -> $PWD"
        fi
    fi
}

export BUNDLE BIN OUT
export -f setup_binaries setup_loader setup_fixtures
run setup setup.log 90 bash -c 'setup_binaries && setup_loader && setup_fixtures'
# A loader that finds no NVIDIA ICD is told where the driver's mount keeps it.
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$ICD" ] &&
    ! grep -lsq nvidia /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; then
    export VK_DRIVER_FILES="$ICD"
    echo "VK_DRIVER_FILES=$ICD" | tee -a "$OUT/setup.log"
fi
run info setup.log 15 "$GLIMPSE" info
if grep -q "^chosen: .*Cpu" "$OUT/setup.log" 2> /dev/null; then
    echo "info: the chosen adapter is a CPU device: these are not GPU results" | tee -a "$STATUS"
fi
COMPARE=()
if run torch torch.log 60 "$PYTHON" tools/bench_torch.py --device cuda --suite all --batch 8 --repeat 10 \
    --json "$OUT/torch_cuda.json"; then
    COMPARE=(--compare "$OUT/torch_cuda.json")
fi
run bench bench.txt 150 "$GLIMPSE" bench --suite all --batch 8 --seed 1 --repeat 10 --json "$OUT/glimpse.json" \
    ${COMPARE[@]+"${COMPARE[@]}"}
# Each test binary in turn, within what is left of the budget.
for t in "$BIN"/test-*; do
    [ -x "$t" ] || continue
    run "tests ${t##*/test-}" tests.log 300 env GLIMPSE_REQUIRE_GPU=1 "$t"
done

{
    echo "glimpse GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    sed 's/^/bundle: /' "$BUNDLE/manifest" 2> /dev/null || echo "bundle: none (setup.log)"
    grep -m1 "^chosen:" "$OUT/setup.log" 2> /dev/null || echo "chosen adapter: unknown (see setup.log)"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    echo
    cat "$STATUS"
    echo "total: $(($(date +%s) - START)) s of the $BUDGET s budget"
    echo
    echo "glimpse bench --suite all --batch 8 (GPU timestamps; ratios against tools/bench_torch.py --device cuda where it ran):"
    if grep -q "^workload" "$OUT/bench.txt" 2> /dev/null; then
        sed -n '/^workload/,$p' "$OUT/bench.txt"
    else
        echo "(no bench table: see bench.txt)"
    fi
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
# The exit status: 0 only when every step passed.
! grep -qv ": ok," "$STATUS"
