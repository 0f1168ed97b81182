//! Kernel choice for matmul (part of [`super`], the one place kernels are chosen): its variant,
//! matmul_subgroup's tile and where its stores touch their lines first, and whether Winograd's
//! GEMMs run transposed.

use super::super::matmul::Variant;
use super::super::{subgroup_tile, subgroup_tiles, SubgroupTile};
use crate::gpu::DeviceProfile;

/// Whether matmul_subgroup runs with subgroups of this device: any fixed width from 4 to 64.
pub fn matmul_subgroups(profile: &DeviceProfile) -> bool {
    profile.subgroup_width.is_some()
}

/// Whether the GEMM kernels that store a tall tile at the end (matmul_subgroup, the phased conv)
/// load one element of each output row first, for output rows of `row_len` elements: on CPU
/// devices, where one subgroup's stores to R rows a long row apart are more streams than the
/// host's prefetchers follow, those loads overlap the lines' misses with the multiply-adds (on
/// lavapipe, one thread, the 1 x 1 conv 8 x 64 x 56 x 56 > 256: 73-77 -> 49-51 ms, and 50 -> 47 ms at
/// a quieter time: how much it gains follows the host's memory system); where rows are short
/// the rows of a tile lie close together, the prefetchers keep up, and the loads only cost (the
/// 7 x 7 maps' 1 x 1 convs 1.09x slower, 14 x 14 0.97x, 28 x 28 0.91x, 56 x 56 0.76-0.83x:
/// BENCHMARKS.md, "Output lines touched first"). On GPUs they would be a wasted read.
pub fn touch_outputs_first(profile: &DeviceProfile, row_len: usize) -> bool {
    profile.cpu && row_len >= TOUCH_MIN_ROW
}

/// The shortest output row (elements) whose lines [`touch_outputs_first`] touches: 2 KiB, between a
/// 14 x 14 map's 784 bytes and a 28 x 28 map's 3,136.
pub const TOUCH_MIN_ROW: usize = 512;

/// What matmul's choice weighs of a product besides the device: its sizes, whether both
/// operands' contiguous rows are whole vec4s, whether neither operand is transposed (with any
/// affine per row: `untransposed`), and whether A is shared by the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    /// The product's batch (images, or Winograd's points).
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub vec4_fits: bool,
    pub untransposed: bool,
    pub shared_a: bool,
}

impl MatmulShape {
    /// Whether the product is a stride-1 1 x 1 conv's GEMM: untransposed, a [1, M, K] weight shared
    /// by the batch times b [N, K, HW].
    fn conv1x1(&self) -> bool {
        self.untransposed && self.shared_a
    }
}

/// matmul: an untransposed product with short rows (a 7 x 7 map's 1 x 1 conv, Winograd's GEMMs
/// over few tiles, a batch-1 14 x 14 map's 1 x 1 conv) as `Rows` where [`matmul_rows`] says; else, where both operands' contiguous rows are whole
/// vec4s, the subgroup kernel on devices with subgroups (1.5-1.8x matmul_vec4 on lavapipe), else
/// matmul_vec4; for other rows, a stride-1 1 x 1 conv's GEMM with K a multiple of 4 runs on CPU
/// devices with subgroups as `Repack` (B's rows padded to whole vec4s by repack_pixels, then
/// matmul_subgroup: on lavapipe a median share of the GEMM beside them of 68% against the windowed
/// conv kernel's 61% in the same alternated runs, BENCHMARKS.md "Repacked 1x1 GEMMs"); other such
/// GEMMs (and all on GPUs, unmeasured) go to the kernel [`conv2d`](super::conv2d) picks for that
/// conv (on lavapipe the windowed one: a median 62% of the GEMM timed beside it, where the staged
/// implicit GEMM reached 29-40%; BENCHMARKS.md "third pass"), anything else to the register-tiled
/// kernel.
pub fn matmul(profile: &DeviceProfile, shape: MatmulShape) -> Variant {
    let side_by_side = if shape.shared_a { shape.batch } else { 1 };
    if shape.untransposed && matmul_rows(profile, shape.m, shape.k, shape.n, side_by_side) {
        return Variant::Rows;
    }
    match (shape.vec4_fits, matmul_subgroups(profile)) {
        (true, true) => Variant::Subgroup,
        (true, false) => Variant::Vec4,
        (false, true) if shape.conv1x1() && shape.k.is_multiple_of(4) && profile.cpu => Variant::Repack,
        (false, true) if shape.conv1x1() => Variant::ConvGemm,
        (false, _) => Variant::Tiled,
    }
}

/// Most columns (output pixels per image) of a product matmul_rows_subgroup computes in one piece:
/// its lanes hold 4 rows by 13 column quads. Longer rows (multiples of 4) it takes in column tiles.
pub const ROWS_MAX_COLUMNS: usize = 52;

/// Most columns, over the images matmul_subgroup would tile side by side, of a product with rows
/// longer than [`ROWS_MAX_COLUMNS`] that matmul_rows_subgroup takes in column tiles: a batch-1
/// 14 x 14 map (196). There matmul_subgroup pads 196 columns to 224 or 256; on lavapipe the rows
/// kernel ran the batch-1 14 x 14 maps' 1 x 1 convs in 0.79-0.95x the time (`cargo run --release
/// --example gemm_rows -- 1,1024,14,256,1,ar 1,1024,14,512,1,ar 1,256,14,1024,1,arr`) and the
/// batch-1 28 x 28 Winograd convs' GEMMs (196 tiles) in 0.81-0.93x (`cargo run --release --example
/// winograd -- 1 64 28 128 1`), but given every product the convs suite's 56 x 56 maps' 1 x 1 convs
/// took 1.15-1.5x, most 28 x 28 ones 1.05-1.17x, and most batch-8 convs 1.1-1.3x (BENCHMARKS.md,
/// "Short rows: lanes take the output rows", column tiles).
pub const ROWS_MAX_TILED_COLUMNS: usize = 196;

/// Whether a product of A [m, k] (shared by the batch or not) and B [batch, k, columns], neither
/// transposed (the 1 x 1 conv form, a repacked conv's GEMM, Winograd's GEMMs), runs as
/// matmul_rows_subgroup, whose lanes take 4 output rows by all the columns: on CPU devices with
/// subgroups, m and k multiples of 4 (a lane's rows are whole vec4s of the output; A's rows whole
/// vec4s), and either at most [`ROWS_MAX_COLUMNS`] columns (a 7 x 7 map) or, in column tiles, a
/// multiple of 4 with at most [`ROWS_MAX_TILED_COLUMNS`] over the `side_by_side` images
/// matmul_subgroup would tile together (the batch where A is shared, else 1).
/// There matmul_subgroup's 32-column subgroups pad a 49-pixel row to 64 (and store it one element
/// at a time): on lavapipe the rows kernel ran the 7 x 7 maps' 1 x 1 convs at 81-95% of the 512^3
/// GEMM beside them against 63-67% at batch 1, 95-100% against 82-91% at batch 8 (`cargo run
/// --release --example gemm_rows -- 1,512,7,2048,1,ar 1,2048,7,512,1,arr 8,512,7,2048,1,ar
/// 8,2048,7,512,1,arr`, two alternated runs; BENCHMARKS.md, "Short rows: lanes take the output
/// rows"). Not on GPUs: unmeasured there, and its workgroup must be exactly one subgroup.
pub fn matmul_rows(profile: &DeviceProfile, m: usize, k: usize, columns: usize, side_by_side: usize) -> bool {
    let short = columns <= ROWS_MAX_COLUMNS;
    let tiled = columns.is_multiple_of(4)
        && columns.saturating_mul(side_by_side) <= ROWS_MAX_TILED_COLUMNS
        && rows_column_tile(columns) >= ROWS_MIN_TILE_COLUMNS;
    profile.cpu && profile.subgroup_width.is_some() && (short || tiled) && m.is_multiple_of(4) && k.is_multiple_of(4)
}

/// Fewest columns per column tile Auto gives matmul_rows_subgroup: narrower tiles load more per
/// multiply-add, and where the rows split into them evenly matmul_subgroup pads little (a 64-column
/// product's 2 tiles of 32: Winograd's GEMMs of 1 x 128 x 14 x 14 > 256 at dilation 2 took 1.5-1.7
/// ms against matmul_subgroup's 1.4-1.5; `cargo run --release --example winograd -- 1 128 14 256 2`).
pub const ROWS_MIN_TILE_COLUMNS: usize = 48;

/// The columns of one column tile of matmul_rows_subgroup for rows of `columns` (a multiple of 4):
/// all of them up to [`ROWS_MAX_COLUMNS`], else the fewest tiles of at most that many, as even as
/// whole quads allow (64 columns: 2 tiles of 32, not 52 and 12; 196: 4 of 52, the last 40).
pub fn rows_column_tile(columns: usize) -> usize {
    if columns <= ROWS_MAX_COLUMNS {
        return columns;
    }
    let quads = columns.div_ceil(4);
    4 * quads.div_ceil(quads.div_ceil(ROWS_MAX_COLUMNS / 4))
}

/// matmul_subgroup's tiles on CPU devices (rows x columns per workgroup), in the order
/// [`matmul_tile`] takes them among equals: those of 64-row subgroups (256 outputs per invocation),
/// then 32-row (128) and 16-row (64) ones. Within each height, the 4-column-group tile first: among
/// the 16-row tiles 32 x 128 ran the K = 64 GEMMs on 56 x 56 maps at 79-86% of the 512^3 GEMM
/// against 66-86% for 64 x 64 (one thread, `LP_NUM_THREADS=1`; the 512^3 GEMM itself within 2% on
/// all four), and the 8-group one (16 x 256 there) was never the fastest (BENCHMARKS.md "Tiles by
/// shape"): it comes last.
pub const CPU_MATMUL_TILES: [[usize; 2]; 12] = [
    [128, 128],
    [256, 64],
    [512, 32],
    [64, 256],
    [64, 128],
    [128, 64],
    [256, 32],
    [32, 256],
    [32, 128],
    [64, 64],
    [128, 32],
    [16, 256],
];

/// matmul_subgroup's multiply-add rate on CPU devices by rows per subgroup, relative to 64 rows:
/// on lavapipe the 512^3 GEMM ran about 1.2x faster at each step up (29-34, 35-40 and 40-51
/// GFLOP/s with 16, 32 and 64 rows; 128 rows fell back to 32-35: BENCHMARKS.md, "Taller subgroup
/// tiles"): a taller subgroup loads less per multiply-add, and loads bound the loop there.
fn subgroup_rate(rows_per_subgroup: usize) -> f64 {
    match rows_per_subgroup {
        64.. => 1.0,
        32 => 0.82,
        _ => 0.69,
    }
}

/// matmul_subgroup's multiply-add rate on CPU devices in workgroups of one subgroup, relative to
/// 64-invocation workgroups of subgroups as tall: the model takes the one-subgroup tile only where
/// it saves more than a tenth. Its finer grain made the batch-1 products of few tiles faster on
/// lavapipe (1 x 512 x 28 x 28 > 128: 2.72-2.73 -> 2.13-2.14 ms; `REPS=5 cargo run --release
/// --example gemm_rows -- 1,512,28,128,1,ar`), and the 512^3 GEMM ran alike (5.18 against
/// 4.82-5.23 ms), but given every product it ran batch-8 1 x 1 convs the model found 2-6% cheaper
/// on it 1.03-1.18x slower (8 x 64 x 56 x 56 > 128 / 2, 8 x 128 x 28 x 28 > 256 / 2; BENCHMARKS.md,
/// "One-subgroup tiles").
const ONE_SUBGROUP_RATE: f64 = 0.9;

/// matmul_subgroup's output tile for `batches` products of `m` x `columns` (its columns as the
/// kernel tiles them: batch x N where the column tiles run across the images, with `batches` 1,
/// else N) with subgroups of `width` lanes. On CPU devices, of [`CPU_MATMUL_TILES`] the shader can
/// take at this width ([`subgroup_tiles`]), the one that finishes first by a model of the device:
/// the workgroups run [`DeviceProfile::cpu_threads`] at a time, each costing its whole tile
/// (padding is computed too: SIMD lanes past the edge run anyway) at its subgroups'
/// [`subgroup_rate`]; among equals the least padded, then the list's first. So a 28 x 28 map's 1 x
/// 1 conv with 128 outputs and K = 512 at batch 1 would take 7 workgroups of 64-row subgroups (128
/// x 128, 14% padding) rather than 25 of 16-row ones that pad nothing (128 x 32: on lavapipe 3.45
/// -> 3.00-3.08 ms, `gemm_rows -- 1,512,28,128,1,ar`); and the Winograd convs' GEMMs over 196 or
/// 1568 tiles (batch 1 and 8 at 28 x 28 outputs) take 128 x 128 tiles: 0.84-0.92x the time at
/// batch 8 (BENCHMARKS.md, "Tiles by a cost model"). Where that tile has 64-row subgroups, the
/// one-subgroup tile ([`SubgroupTile::one_subgroup`], 64 x 4 `width`) replaces it if the same model
/// finds it strictly cheaper at [`ONE_SUBGROUP_RATE`] of the rate: 7 workgroups on 2 threads leave
/// one idle for a round, 50 of one subgroup do not (that conv 2.72 -> 2.13 ms). Not below 64-row
/// subgroups: there the tile is short for M, and a one-subgroup pipeline of the scalar-store layout
/// took 2.3 s to compile (the demo's first run, 4.6-5.0 -> 6.3-6.7 s). Elsewhere (unmeasured on
/// GPUs) [`subgroup_tile`].
pub fn matmul_tile(profile: &DeviceProfile, width: usize, m: usize, columns: usize, batches: usize) -> SubgroupTile {
    let default = SubgroupTile::new(subgroup_tile(width));
    if !profile.cpu {
        return default;
    }
    let valid = subgroup_tiles(width);
    let candidates = CPU_MATMUL_TILES.into_iter().map(SubgroupTile::new).filter(|t| valid.contains(t));
    let threads = profile.cpu_threads.max(1);
    let padded = |t: SubgroupTile| m.div_ceil(t.rows) * t.rows * columns.div_ceil(t.cols) * t.cols;
    let cost = |t: SubgroupTile| {
        let rounds = (m.div_ceil(t.rows) * columns.div_ceil(t.cols) * batches).div_ceil(threads);
        let grain = if t.invocations < 64 { ONE_SUBGROUP_RATE } else { 1.0 };
        (rounds * t.rows * t.cols) as f64 / (subgroup_rate(t.rows_per_subgroup()) * grain)
    };
    // Strictly better only, so the first of equals stays.
    let better = |t, than| (cost(t), padded(t)) < (cost(than), padded(than));
    let best = candidates.reduce(|best, t| if better(t, best) { t } else { best }).unwrap_or(default);
    let one = SubgroupTile::one_subgroup(width);
    if best.rows_per_subgroup() == one.rows_per_subgroup() && better(one, best) {
        one
    } else {
        best
    }
}

/// Whether a Winograd conv's GEMMs run transposed, M[e]^T = V[e]^T U[e]^T: tiles as the product's
/// rows, output channels as its columns (conv2d_winograd_output's TRANSPOSED reads that M). On CPU
/// devices with subgroups, where that pads the product's output less than [c_out, tiles] does with
/// the tiles [`matmul_tile`] picks for each (a batch-1 7 x 7 output is 16 tiles: half of a
/// 32-column tile, all of a 16-row one), and c_out a multiple of 4 (the transposed output transform
/// reads 4 channels as one vec4); never where [c_out, tiles] runs as matmul_rows_subgroup
/// ([`matmul_rows`]: at most 52 tiles), which pads no column (on lavapipe the GEMMs of 1 x 512 x 7
/// x 7 > 512 took 3.5-3.7 ms against 4.2-4.4 transposed; `cargo run --release --example winograd
/// -- 1 512 7 512 1`, BENCHMARKS.md "Short rows"). `k_pad`, `t_pad`: the products' K and tiles
/// (multiples of 4); `elements`: the scheme's batch of products (16 or 25), as the GEMM dispatch
/// passes it to [`matmul_tile`].
pub fn winograd_transposed(profile: &DeviceProfile, c_out: usize, k_pad: usize, t_pad: usize, elements: usize) -> bool {
    let Some(width) = profile.subgroup_width.map(|w| w as usize) else {
        return false;
    };
    if matmul_rows(profile, c_out, k_pad, t_pad, 1) {
        return false;
    }
    let padded = |m: usize, n: usize| {
        let [tr, tc] = matmul_tile(profile, width, m, n, elements).shape();
        m.div_ceil(tr) * tr * n.div_ceil(tc) * tc
    };
    profile.cpu && c_out.is_multiple_of(4) && padded(t_pad, c_out) < padded(c_out, t_pad)
}
