#!/usr/bin/env bash
# tools/gpu_bundle.sh: builds here what tools/gpu_check.sh needs on a lent GPU machine, which has
# no Rust toolchain and no network (../.library/device: its image holds CUDA, PyTorch and timm).
#
#   tools/gpu_bundle.sh            (about 2.5 minutes on 2 cores with target/ warm from a release
#                                   build; GPU_BUNDLE_PROFILE=dev bundles the dev build instead, as
#                                   CI does to check this script and gpu_check.sh's setup)
#
# Writes .gpu_check/ (ignored by git, 25-30 MB):
#   bin.tar.xz    glimpse and the test binaries that check the GPU (release builds, stripped):
#                 every kernel against its CPU reference (ops), the device (gpu), blocks and
#                 networks against PyTorch (blocks, networks, models), fused against unfused
#                 (fusion), the golden fixtures (golden)
#   debs/         the Vulkan loader's Debian package (libvulkan1), unpacked there where the
#                 image has no loader (wgpu opens libvulkan.so.1; NVIDIA's driver is its ICD)
#   manifest      the commit, whether the tree had changes, and the folder the tests were built
#                 in (they find tests/fixtures and examples/ through it; gpu_check.sh links it
#                 to the checkout there)
# Then, with the device tool: run(command="bash tools/gpu_check.sh $OUT", carry=[".gpu_check"],
# timeout_s=600). Built on x86-64 Linux (the GPU machines' processor); the binaries need glibc
# 2.36 or newer.
set -euo pipefail
cd "$(dirname "$0")/.."
TESTS=(ops gpu blocks networks models fusion golden)
DIR=.gpu_check
rm -rf "$DIR"
mkdir -p "$DIR/debs" "$DIR/bin"

[ "$(uname -m)" = x86_64 ] || { echo "gpu_bundle: the GPU machines are x86-64; this is $(uname -m)" >&2; exit 1; }
PROFILE="${GPU_BUNDLE_PROFILE:-release}"
OUT_DIR=target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
cargo build --profile "$PROFILE" --locked --bin glimpse
cp "$OUT_DIR/glimpse" "$DIR/bin/glimpse"
args=()
for t in "${TESTS[@]}"; do args+=(--test "$t"); done
# The executables cargo built, one JSON message per artifact.
cargo test --profile "$PROFILE" --locked --no-run --message-format=json "${args[@]}" > "$DIR/build.json"
python3 - "$DIR" "${TESTS[@]}" <<'EOF'
import json, shutil, sys
out, wanted = sys.argv[1], set(sys.argv[2:])
found = {}
for line in open(f"{out}/build.json"):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in wanted \
            and m["profile"]["test"]:
        found[m["target"]["name"]] = m["executable"]
missing = wanted - found.keys()
if missing:
    sys.exit(f"gpu_bundle: cargo built no test binary for {sorted(missing)}")
for name, path in sorted(found.items()):
    shutil.copy(path, f"{out}/bin/test-{name}")
EOF
rm "$DIR/build.json"
strip "$DIR"/bin/*
tar -C "$DIR" -cJf "$DIR/bin.tar.xz" bin
rm -r "$DIR/bin"

# The loader, for an image without one (Debian's build runs on newer glibc too).
lists=$(mktemp -d)
mkdir -p "$lists/partial"
apt_opts=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$lists" -q)
apt-get "${apt_opts[@]}" update > /dev/null
(cd "$DIR/debs" && apt-get "${apt_opts[@]}" download libvulkan1 2> /dev/null)
rm -rf "$lists"
ls "$DIR"/debs/libvulkan1_*.deb > /dev/null

{
    echo "commit=$(git rev-parse --short HEAD)"
    echo "changes=$([ -z "$(git status --porcelain --untracked-files=no)" ] && echo none || echo uncommitted)"
    echo "built_in=$PWD"
    echo "profile=$PROFILE"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$DIR/manifest"
cat "$DIR/manifest"
du -sh "$DIR"
echo "next: run(command=\"bash tools/gpu_check.sh \$OUT\", carry=[\".gpu_check\"], timeout_s=600)"
