//! Kernel choice: the one place that picks, from the [`DeviceProfile`] and the shapes, which
//! kernel each op with alternatives runs. Every op's `Auto` resolves here and nowhere else, so the
//! whole policy reads in one file and is tested without a device (choose_tests.rs lists the kernel
//! each op gets on lavapipe, GL, SwiftShader and a 32-lane discrete GPU).
//!
//! The subgroup kernels take the width from the profile: conv2d_gemm_subgroup,
//! conv2d_window_subgroup, conv2d_phased_subgroup, matmul_subgroup and nonlocal_attention_subgroup
//! any fixed power-of-two width from 4 to 64.
//! (conv2d_3x3_subgroup, a direct 3 x 3 kernel for 8 lanes only, is gone:
//! the implicit GEMM ran the same convs 2-3x faster on lavapipe, see BENCHMARKS.md.)

use super::conv2d::{ConvKernel, WinogradSizes, MAX_K};
use super::global_pool::PoolVariant;
use super::nonlocal_attention::FlashKernel;
use super::softmax::SoftmaxKernel;
use crate::gpu::DeviceProfile;

/// What conv2d's choice depends on besides the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// Output channels per group: the implicit GEMM's rows.
    pub cout_per_group: usize,
    /// Input channels per group x taps: the implicit GEMM's K.
    pub k: usize,
    /// [KH, KW].
    pub kernel: [usize; 2],
    /// Input channels per group.
    pub cin_per_group: usize,
    /// Channel groups.
    pub groups: usize,
    /// [y, x] stride, padding and dilation.
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    /// [N, OH, OW]: the batch and the output map.
    pub out: [usize; 3],
}

/// Whether this is a 3 x 3 conv with padding = dilation = 1 or 2 on both axes (the output map is
/// the input's divided by the stride): the taps the windowed and Winograd kernels take.
fn same_padded_3x3(shape: &ConvShape) -> bool {
    let d = shape.dilation[0];
    shape.kernel == [3, 3] && (d == 1 || d == 2) && shape.dilation == [d, d] && shape.padding == [d, d]
}

/// Whether conv2d_window_subgroup computes this conv: stride 1 or 2 on both axes (each lane's 4
/// pixels read elements of one row of x 1 or 2 apart at every tap) and either 3 x 3 with padding =
/// dilation = 1 or 2 on both axes, or 1 x 1 without padding; one group, input channels a multiple
/// of 4 (whole vec4 weight rows; 4 channels per loop step). (Its 1 x 1 stride-2 path is no longer
/// chosen where [`repack_fits`] holds, which measured faster; it stays reachable when forced.)
pub fn window_fits(shape: &ConvShape) -> bool {
    let s = shape.stride[0];
    let taps = same_padded_3x3(shape) || (shape.kernel == [1, 1] && shape.padding == [0, 0]);
    taps && (s == 1 || s == 2) && shape.stride == [s, s] && shape.groups == 1 && shape.cin_per_group.is_multiple_of(4)
}

/// Whether conv2d_phased_subgroup computes this conv: 7 x 7 with stride 2, padding 3 and dilation
/// 1 on both axes (the stem), one group, any input channel count (its weight rows are padded to
/// whole vec4s, so C_in needs no multiple of 4).
pub fn phased_fits(shape: &ConvShape) -> bool {
    shape.kernel == [7, 7]
        && shape.stride == [2, 2]
        && shape.padding == [3, 3]
        && shape.dilation == [1, 1]
        && shape.groups == 1
}

/// Whether a 3 x 3 conv with stride 2, padding 2 and dilation 2 runs as conv2d_window_subgroup's
/// stride-1 conv over x's even rows and columns (the only ones it reads): [`window_fits`] for that
/// conv (input channels a multiple of 4, one group).
pub fn subsampled_window_fits(shape: &ConvShape) -> bool {
    shape.kernel == [3, 3]
        && shape.stride == [2, 2]
        && shape.padding == [2, 2]
        && shape.dilation == [2, 2]
        && window_fits(&ConvShape { stride: [1, 1], padding: [1, 1], dilation: [1, 1], ..*shape })
}

/// Whether repack_pixels + matmul_subgroup (conv2d's RepackSubgroup) computes this conv: one group
/// and K (input channels x taps) a multiple of 4 (the weight's rows are the GEMM's A, read as whole
/// vec4s); any taps, stride, padding and dilation (the repack gathers them).
pub fn repack_fits(shape: &ConvShape) -> bool {
    shape.groups == 1 && shape.k.is_multiple_of(4)
}

/// Whether a conv with these taps and padding is 1 x 1 without padding (any stride): the repack
/// only subsamples x.
pub fn pointwise(kernel: [usize; 2], padding: [usize; 2]) -> bool {
    kernel == [1, 1] && padding == [0, 0]
}

/// Whether conv2d's Winograd kernel computes this conv: 3 x 3, padding = dilation = 1 or 2 on both
/// axes (tiles of 2 x 2 outputs d apart read 4 x 4 inputs d apart), one group, stride 1; or stride
/// 2 with dilation 2 (a stride-1 dilation-1 conv over x's even phase, the only pixels it reads).
pub fn winograd_fits(shape: &ConvShape) -> bool {
    let even_phase = shape.stride == [2, 2] && shape.dilation == [2, 2];
    same_padded_3x3(shape) && (shape.stride == [1, 1] || even_phase) && shape.groups == 1
}

/// Whether conv2d's stride-2 Winograd scheme (25 points per 2 x 2 output tile) computes this conv:
/// 3 x 3, stride 2, padding 1, dilation 1 on both axes, one group.
pub fn winograd_s2_fits(shape: &ConvShape) -> bool {
    same_padded_3x3(shape) && shape.dilation == [1, 1] && shape.stride == [2, 2] && shape.groups == 1
}

/// Fewest 2 x 2 tiles (over the batch) given to the Winograd F(2x2, 3x3) kernel: its GEMMs'
/// columns are the tiles, so fewer leave most of each workgroup tile idle. 16 is a batch-1 7 x 7
/// output. There, with the weight transform run once per plan (a prepared launch) and the GEMM on
/// a 32-column tile ([`matmul_tile`]), Winograd beat the windowed kernel on lavapipe
/// (`cargo run --release --example winograd -- 1 512 7 512 1`, the transforms of x and M plus the
/// GEMM: 9.6 ms against 13.3; `-- 1 256 7 512 2`: 5.2 against 6.7; the stride-2 dilation-2
/// `-- 1 128 14 512 2 window 2`: 3.7 against 5.1), where with the weight transform on every run and
/// 64-column tiles it had been 3.2x slower. (On OpenGL / llvmpipe the 16 tiles were 1.7x faster
/// than conv2d_gemm.)
pub const WINOGRAD_MIN_TILES: usize = 16;

/// Fewest tiles given to the stride-2 scheme where its GEMMs neither run transposed
/// ([`winograd_transposed`]) nor on matmul_rows_subgroup ([`matmul_rows`], at most 52 tiles; either
/// way [`WINOGRAD_MIN_TILES`]; with rows 2 x 512 x 14 x 14 > 512's 25 GEMMs took 10.7-10.8 ms
/// against 10.0-10.1 transposed, 1 x ...: 7.0 against 7.2, and the windowed kernel 20.8-21.1:
/// `cargo run --release --example winograd -- 2 512 14 512 1 window 2`): on a batch-1 7 x 7 output (16
/// tiles) its 25 GEMMs in 32-column tiles lost to the windowed kernel even without the weight
/// transform (`cargo run --release --example winograd -- 1 512 14 512 1 window 2`: 14.7 ms against
/// 13.0; `-- 1 128 14 512 1 window 2`: 4.1 against 4.0), and on OpenGL / llvmpipe to conv2d_gemm
/// (`WGPU_BACKEND=gl ... -- 1 512 14 512 1 gemm 2`: 64 ms without the weight transform against
/// 45); transposed they win on lavapipe (8.7 ms against 12.9; 2.4 against 3.4). 49 tiles (a
/// 14 x 14 output) win either way.
pub const WINOGRAD_S2_MIN_TILES: usize = 48;

/// Fewest input channels given to the Winograd kernel: with fewer, its GEMMs' K is tiny and
/// writing and reading M (16 values per tile and output channel) outweighs the multiply-adds
/// saved. On lavapipe (`cargo run --release --example winograd -- 1 C 56 64 1 gemm-subgroup`):
/// 3 channels 4.2 ms against the implicit GEMM's 3.8, 8 channels 4.5 against 6.8.
pub const WINOGRAD_MIN_CIN: usize = 8;

/// Fewest input channels given to the stride-2 Winograd scheme: its 25 GEMMs write and read 6.25
/// values of M per output pixel and channel (F(2x2, 3x3): 4), which a K of 32 does not pay for. On
/// lavapipe (`cargo run --release --example winograd -- N C HW COUT 1 window 2`, loaded machine):
/// 8 x 32 x 56 x 56 > 128 86 ms against the windowed kernel's 65 (1 x ...: 6.5 against 5.3), 8 x 64
/// x 28 x 28 > 256 33 against 52, 1 x 256 x 28 x 28 > 256 15 against 26.
pub const WINOGRAD_S2_MIN_CIN: usize = 64;

/// Most bytes of the scratch one Winograd conv writes on every run, its GEMMs' operands V and M
/// (f32, [`WinogradSizes::buffer_bytes`]; the device's scratch slots hold the largest conv's,
/// shared by all): above it the conv takes another kernel. 64 MiB keeps each buffer within
/// WebGPU's default 128 MiB binding and holds batch 8 of the networks' largest (8 x 64 x 56 x 56 >
/// 64: 51.4 MB).
pub const WINOGRAD_MAX_SCRATCH_BYTES: usize = 64 << 20;

/// Most bytes of U, the transformed weights (16/9 of the weights; a plan holds one per conv,
/// counted with its weights): 64 MiB, within WebGPU's default binding, takes 1024 -> 1024
/// channels (BasicBlock at 1 x 1024 x 14 x 14: `cargo run --release --example winograd -- 1 1024
/// 14 1024 1`, 88.8 ms with the weight transform, 72.5 without, against the windowed kernel's
/// 181.5).
pub const WINOGRAD_MAX_WEIGHT_BYTES: usize = 64 << 20;

/// Whether conv2d on this device takes the Winograd kernel for `shape`: CPU devices (the GEMMs run
/// on matmul_subgroup with subgroups, matmul_vec4 without; on OpenGL / llvmpipe (`WGPU_BACKEND=gl
/// cargo run --release --example winograd -- N 64 56 64 1 gemm`),
/// 1 x 64 x 56 x 56 > 64 took 30 ms against conv2d_gemm's 100, 8 x 64 x 56 x 56 275 against 527),
/// [`winograd_fits`] or [`winograd_s2_fits`], at least [`WINOGRAD_MIN_CIN`] input channels
/// ([`WINOGRAD_S2_MIN_CIN`] for the stride-2 scheme), at least [`WINOGRAD_MIN_TILES`] tiles
/// ([`WINOGRAD_S2_MIN_TILES`] for the stride-2 scheme unless its GEMMs run transposed), at most
/// [`WINOGRAD_MAX_SCRATCH_BYTES`] of scratch and [`WINOGRAD_MAX_WEIGHT_BYTES`] of transformed
/// weights. Not on GPUs: unmeasured there.
fn winograd(profile: &DeviceProfile, shape: &ConvShape) -> bool {
    let [n, oh, ow] = shape.out;
    let sizes = WinogradSizes::new(n, shape.cin_per_group, [oh, ow], shape.stride[0], shape.dilation[0]);
    let [u_bytes, v_bytes, m_bytes] = sizes.buffer_bytes(shape.cout_per_group);
    let (min_cin, min_tiles) = if winograd_s2_fits(shape) {
        let transposed = winograd_transposed(profile, shape.cout_per_group, sizes.k_pad, sizes.t_pad, sizes.points);
        let short_rows = matmul_rows(profile, shape.cout_per_group, sizes.k_pad, sizes.t_pad, 1);
        (WINOGRAD_S2_MIN_CIN, if transposed || short_rows { WINOGRAD_MIN_TILES } else { WINOGRAD_S2_MIN_TILES })
    } else {
        (WINOGRAD_MIN_CIN, WINOGRAD_MIN_TILES)
    };
    profile.cpu
        && profile.max_storage_buffers >= 5
        && (winograd_fits(shape) || winograd_s2_fits(shape))
        && shape.cin_per_group >= min_cin
        && sizes.tiles >= min_tiles
        && u_bytes <= WINOGRAD_MAX_WEIGHT_BYTES
        && v_bytes.saturating_add(m_bytes) <= WINOGRAD_MAX_SCRATCH_BYTES
}

/// The stride-2 3 x 3 convs im2col ([`im2col`]) takes by their input channels and output pixels per
/// image: (most channels, most pixels) pairs. There the stride-2 Winograd scheme's 25 GEMMs have
/// K = C_in, and the stores of M cost more than the multiply-adds it saves; below 64 channels the
/// windowed kernel took them. On lavapipe (`cargo run --release --example gemm_rows -- ROW,k3`, two
/// alternated runs each, 2026-12-07): 8 x 128 x 14 x 14 > 512 14.4-14.8 ms against im2col's
/// 11.8-12.1, 8 x 64 x 28 x 28 > 256 17.4-17.8 against 12.1-12.6, 1 x 64 x 28 x 28 > 256 2.23-2.38
/// against 1.93-2.11, and on 28 x 28 outputs with 32 channels (the windowed kernel's) 8 x 32 x 56 x
/// 56 > 128 16.33-16.35 against 14.70-14.80 (1 x ...: 2.25-2.27 either way); with 256 channels
/// Winograd won (1 x 256 x 28 x 28 > 256: 6.70-6.72 against 7.37-7.45), and on 28 x 28 outputs with
/// 128 it won or tied (8 x 128 x 56 x 56 > 128: 52.8-53.4 against 54.4-54.7; 1 x ...: 7.79-8.30
/// against 8.10-8.43).
pub const IM2COL_REACH: [(usize, usize); 2] = [(32, 784), (128, 196)];

/// Most output pixels over the batch of a conv given to im2col whatever its input channels: one
/// 7 x 7 map, where the stride-2 Winograd scheme's 16 tiles leave its GEMMs on 16-row subgroups (1
/// x 512 x 14 x 14 > 512: 9.06-9.28 ms against im2col's 6.50-6.95; at batch 8 Winograd won, 44.3-44.6
/// against 47.1-48.1).
pub const IM2COL_MAX_BATCH_PIXELS: usize = 49;

/// Most bytes of the scratch im2col writes on every run (N x 9 C_in x the output pixels rounded up
/// to a multiple of 4, f32): as [`WINOGRAD_MAX_SCRATCH_BYTES`].
pub const IM2COL_MAX_SCRATCH_BYTES: usize = 64 << 20;

/// Whether conv2d runs a 3 x 3 / 2 conv (padding 1: [`winograd_s2_fits`]) as im2col (repack_pixels
/// gathering the 9 taps, then matmul_subgroup: conv2d's RepackSubgroup) on a CPU device with
/// subgroups (the caller checks the device): K = 9 C_in a multiple of 4 ([`repack_fits`]), at most [`IM2COL_MAX_BATCH_PIXELS`]
/// output pixels over the batch or input channels and output map within [`IM2COL_REACH`], and at
/// most [`IM2COL_MAX_SCRATCH_BYTES`] of scratch. Not the stride-1
/// convs: Winograd F(2x2, 3x3) saves 2.25x the multiply-adds there and won at every shape tried
/// (1 x 512 x 7 x 7 > 512: 5.5-5.9 ms against 6.7-7.0; 1 x 256 x 7 x 7 > 512 dilation 2: 2.9-3.0
/// against 3.5-3.8), nor the dilation-2 ones over x's even phase, which it ran no faster (1 x 128 x
/// 14 x 14 > 512: 1.86-2.23 ms against 1.91-1.92; 8 x 32 x 56 x 56 > 128: 14.53-14.54 against
/// 14.46-14.70).
fn im2col(shape: &ConvShape) -> bool {
    let [n, oh, ow] = shape.out;
    let pixels = oh * ow;
    let scratch = n.saturating_mul(shape.k).saturating_mul(pixels.next_multiple_of(4)).saturating_mul(4);
    let reached = IM2COL_REACH.iter().any(|&(cin, most)| shape.cin_per_group <= cin && pixels <= most);
    let small = n * pixels <= IM2COL_MAX_BATCH_PIXELS || reached;
    winograd_s2_fits(shape) && repack_fits(shape) && small && scratch <= IM2COL_MAX_SCRATCH_BYTES
}

/// Fewest output channels per group the implicit GEMM takes: its tiles are 16 rows per subgroup
/// (64 per workgroup), so depthwise and narrow grouped convs would compute mostly padding; the
/// direct kernel holds 4 channels per invocation.
pub const GEMM_MIN_COUT_PER_GROUP: usize = 8;

/// Workgroup memory (bytes) and storage buffers the implicit-GEMM convs need: two 8 KiB tiles;
/// x, the weights twice (scalar and vec4 views), affine, residual and the output.
pub const GEMM_WORKGROUP_BYTES: u32 = 16384;
pub const GEMM_STORAGE_BUFFERS: u32 = 6;

/// conv2d: im2col (RepackSubgroup) for the 3 x 3 / 2 convs [`im2col`] takes (small output maps
/// with few input channels, or one 7 x 7 output map); Winograd F(2x2, 3x3) where [`winograd`]
/// says (CPU devices; on lavapipe 1.5-2x the windowed kernel's effective rate on the stride-1
/// 3 x 3 convs, BENCHMARKS.md "Winograd"; also the stride-2 dilation-2 convs over x's even phase),
/// and the stride-2 Winograd scheme for the stride-2 dilation-1 ones (WinogradStride2; both
/// BENCHMARKS.md "stride-2 convs on Winograd"); else on
/// CPU devices with subgroups (any fixed width from 4 to 64; all unmeasured on GPUs,
/// where the staged tiles are the textbook choice): strided 1 x 1 convs (the downsamples,
/// [`repack_fits`]) as repack_pixels + matmul_subgroup (on lavapipe their median share of the GEMM
/// timed beside them rose from 46% to 71%, BENCHMARKS.md "Repacked 1x1 GEMMs"); a 3 x 3 / 2 conv
/// with dilation 2 that Winograd does not take (under 16 tiles or 8 input channels) as a stride-1
/// conv over x's even phase ([`subsampled_window_fits`]; its six skresnet18 rows' median 58 ->
/// 68-70% before Winograd took them, BENCHMARKS.md "strided"); the windowed implicit GEMM for the
/// convs it takes ([`window_fits`]: no workgroup memory, X read straight from x; 2x the staged
/// implicit GEMM at 1x64x56x56>64 3x3, 42.5 -> 21.4 ms, BENCHMARKS.md "third pass"; the 3 x 3 / 2
/// convs Winograd does not take stay on it: over 4 phase planes they ran 5-10% slower); the phased
/// one for the 7 x 7 / 2 stem ([`phased_fits`]; 21-31% -> 44-79% of the GEMM, 2-3x faster; 85-91%
/// since its loop body is one tap row, BENCHMARKS.md "The stem's loop body"); else
/// the implicit GEMM wherever a group has enough output channels (and K is below [`MAX_K`]) and the device's limits
/// hold its tiles and bindings; the direct kernel otherwise.
pub fn conv2d(profile: &DeviceProfile, shape: ConvShape) -> ConvKernel {
    let fits =
        profile.max_workgroup_storage >= GEMM_WORKGROUP_BYTES && profile.max_storage_buffers >= GEMM_STORAGE_BUFFERS;
    let many_rows = shape.cout_per_group >= GEMM_MIN_COUT_PER_GROUP;
    let gemm = fits && many_rows && shape.k < MAX_K;
    // The CPU-device kernels built on matmul_subgroup (im2col, the repacked downsamples, the
    // windowed kernel): subgroups of one fixed width, 5 storage buffers, enough rows per group.
    let cpu_subgroups =
        profile.cpu && profile.subgroup_width.is_some() && many_rows && profile.max_storage_buffers >= 5;
    if cpu_subgroups && im2col(&shape) {
        return ConvKernel::RepackSubgroup;
    }
    if winograd(profile, &shape) {
        return match winograd_s2_fits(&shape) {
            true => ConvKernel::WinogradStride2,
            false => ConvKernel::Winograd,
        };
    }
    // These kernels hold 16 rows or more per subgroup (the implicit GEMM 16) and bind 5 buffers.
    let windowed = cpu_subgroups && shape.k < MAX_K;
    if cpu_subgroups && repack_fits(&shape) && shape.stride != [1, 1] && pointwise(shape.kernel, shape.padding) {
        return ConvKernel::RepackSubgroup;
    }
    if windowed && subsampled_window_fits(&shape) {
        return ConvKernel::WindowSubsampled;
    }
    if windowed && window_fits(&shape) {
        return ConvKernel::WindowSubgroup;
    }
    if windowed && phased_fits(&shape) {
        return ConvKernel::PhasedSubgroup;
    }
    match (gemm, profile.subgroup_width) {
        (false, _) => ConvKernel::Direct,
        (true, Some(_)) => ConvKernel::GemmSubgroup,
        (true, None) => ConvKernel::Gemm,
    }
}

/// Whether nonlocal_attention_subgroup runs with subgroups of this device: any fixed width from
/// 4 to 64 (a block of 16 keys is 8 lanes x 2 keys, or 4 lanes x 4 keys).
pub fn flash_subgroups(profile: &DeviceProfile) -> bool {
    profile.subgroup_width.is_some()
}

/// Non-local attention: the subgroup kernel where it runs (faster at every Dv on lavapipe), the
/// portable pair (narrow up to Dv = 64, wide above; the op picks by Dv) otherwise.
pub fn nonlocal_attention(profile: &DeviceProfile) -> FlashKernel {
    if flash_subgroups(profile) {
        FlashKernel::Subgroup
    } else {
        FlashKernel::Portable
    }
}

/// Shortest contiguous softmax row given a workgroup of its own on GPUs.
pub const SOFTMAX_ROW_MIN_LEN: usize = 256;

/// softmax over `len` values `inner` apart: one workgroup per contiguous row (tree reductions)
/// for long rows on GPUs; the serial kernel otherwise, and always on CPU devices, where it ran
/// 1.5-4x faster (lavapipe, rows of 256 to 3136: barriers switch coroutines there).
pub fn softmax(profile: &DeviceProfile, inner: usize, len: usize) -> SoftmaxKernel {
    if inner == 1 && len >= SOFTMAX_ROW_MIN_LEN && !profile.cpu {
        SoftmaxKernel::Row
    } else {
        SoftmaxKernel::Serial
    }
}

/// Smallest H x W given to global_pool's tree kernel on GPUs: below it most of a 256-invocation
/// workgroup would idle. A heuristic, not yet measured on a GPU.
pub const TREE_MIN_PIXELS: usize = 256;

/// global_pool over maps of `pixels`: the tree kernel for large maps on GPUs, the serial one
/// otherwise, and always on CPU devices (10-50x faster than the tree there).
pub fn global_pool(profile: &DeviceProfile, pixels: usize) -> PoolVariant {
    if profile.cpu || pixels < TREE_MIN_PIXELS {
        PoolVariant::Serial
    } else {
        PoolVariant::Tree
    }
}

/// cbam_gate_pool, cbam_spatial_gate, narrow, weighted_sum, sk_sum_pool and the serial
/// global_pool: four pixels per invocation or access with 16-byte accesses (their `_vec4`
/// kernels) where groups of 4 pixels never straddle two images or channel planes, on any device.
pub fn pixels_in_vec4s(pixels_per_image: usize) -> bool {
    pixels_per_image.is_multiple_of(4)
}

/// Winograd F(2x2, 3x3)'s input transform: each window row of an invocation's 4 tiles read as
/// aligned vec4s (conv2d_winograd_input's WIDE) where x is read at step 1 and is as wide as the
/// output, a multiple of 8 (tiles_x = W / 2, a multiple of 4: the 4 tiles on one tile row, their
/// windows from an aligned vec4), on any device. On lavapipe 0.64-0.69x the transform's time at
/// 56 x 56 (BENCHMARKS.md, "Winograd's transforms: constant divisors and whole-vec4 rows").
pub fn winograd_input_rows_in_vec4s(step: usize, width: usize, out_width: usize) -> bool {
    step == 1 && width == out_width && width.is_multiple_of(8)
}

/// Both Winograd schemes' output transform: each 4 tiles' outputs stored as 2 aligned vec4s per
/// row (conv2d_winograd_output's WIDE) where the output is a multiple of 8 wide and the GEMMs did
/// not run transposed (M's 4 tiles per vec4), on any device. On lavapipe 0.8x the transform's time
/// at 56 x 56 (same section).
pub fn winograd_output_rows_in_vec4s(out_width: usize, transposed: bool) -> bool {
    !transposed && out_width.is_multiple_of(8)
}

/// cbam_channel_mlp: 4 weights and 4 pooled values per access (`cbam_channel_mlp_vec4`) where the
/// C channels and R hidden units are whole vec4s (every CBAM of a ResNet), on any device.
pub fn channel_mlp_in_vec4s(channels: usize, hidden: usize) -> bool {
    channels.is_multiple_of(4) && hidden.is_multiple_of(4)
}

/// max_pool2d: the ResNet stem's pool (3 x 3, stride 2, padding 1) over maps whose width is a
/// multiple of 8 reads each row of 4 outputs' windows as 2 vec4s and one more element
/// (`max_pool2d_s2_vec4`: 9 loads per 4 outputs instead of 36), on any device.
pub fn stem_pool_in_vec4s(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], width: usize) -> bool {
    kernel == [3, 3] && stride == [2, 2] && padding == [1, 1] && width.is_multiple_of(8)
}

#[path = "choose_matmul.rs"]
mod matmul_choice;
pub use matmul_choice::*;

#[cfg(test)]
#[path = "choose_tests.rs"]
mod tests;
