//! conv2d's Winograd kernels for 3 x 3 convs with one group, F(2x2, 3x3) for stride 1, padding =
//! dilation (1 or 2) ([`crate::ops::choose::winograd_fits`]; also a 3 x 3 / 2 conv with padding =
//! dilation = 2, as that conv over x's even phase: the input transform reads every second row and
//! column), and a 25-point scheme for stride 2, padding 1, dilation 1
//! ([`crate::ops::choose::winograd_s2_fits`], its own input transform conv2d_winograd_s2_input,
//! the scheme in its header; the weight and output transforms serve both, POINTS 4 or 5 per axis).
//! Four launches, the weight transform
//! (shaders/conv2d_winograd_weight.wgsl), the input transform into a scratch V
//! (conv2d_winograd_input), the 16 GEMMs M[e] = U[e] V[e] as one batched [`Matmul`] (the kernel
//! `choose::matmul` picks: matmul_subgroup, matmul_rows_subgroup over at most 52 tiles on CPU
//! devices, or matmul_vec4 without subgroups), and the output transform fused with the epilogue
//! (conv2d_winograd_output). The scheme and the tile layout: the header of
//! conv2d_winograd_input.wgsl. Where the tiles are a few more than the rows kernel takes, the GEMMs
//! may run transposed, M[e]^T = V[e]^T U[e]^T, tiles as rows in 16-row output tiles instead of
//! half-empty 32-column ones ([`crate::ops::choose::winograd_transposed`]; on lavapipe that took
//! the batch-1 7 x 7 rows from 78-82% of the GEMM beside them to 125-149%, and the rows kernel
//! their GEMMs from 4.2-4.4 to 3.5-3.7 ms: BENCHMARKS.md "Short rows").
//!
//! The GEMMs do 16 multiply-adds per 2 x 2 output tile per (input, output channel), the direct
//! sum 36: 2.25x fewer where the tiles fill the map (even sizes; a 7 x 7 map is 16 tiles for 49
//! pixels, 1.7x fewer); the stride-2 scheme does 25, 1.44x fewer. The bench's GFLOP/s for a conv
//! stays the direct conv's count over the time (the effective rate, the standard way convs are
//! compared), so Winograd rows can pass the GEMM.

use super::{checked_product, Conv2d, Geometry};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::ops::matmul::Matmul;
use crate::ops::{to_u32, Op};
use crate::{kernel, Result, Shape};

/// Mirrors `struct Params` in the shaders/conv2d_winograd_*.wgsl. The transforms read their
/// divisors (tile columns, tiles per image, dilation, tile quads) from override constants instead
/// (see `encode`); those fields stay for one struct across the four kernels.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct WinogradParams {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    dil: u32,
    tiles_y: u32,
    tiles_x: u32,
    tiles: u32,
    t_pad: u32,
    k_pad: u32,
    epilogue: u32,
    total: u32,
    /// x's rows and columns per window row and column: 2 for a 3 x 3 / 2 conv with dilation 2 (x's
    /// even phase), else 1.
    step: u32,
}

/// Invocations per workgroup of the three transform kernels.
const WORKGROUP: usize = 64;

/// The scratch one conv allocates, as its three GEMM operands' sizes: the GEMMs' K (input
/// channels) and N (tiles over the batch), each rounded up to a multiple of 4 (matmul's vec4 rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WinogradSizes {
    /// Tile rows and columns per image.
    pub tiles_yx: [usize; 2],
    /// Tiles over the batch.
    pub tiles: usize,
    /// `tiles` rounded up to a multiple of 4.
    pub t_pad: usize,
    /// Input channels rounded up to a multiple of 4.
    pub k_pad: usize,
    /// Elements of a transformed tile, the GEMMs: 16 (F(2x2, 3x3)) or 25 (the stride-2 scheme).
    pub points: usize,
    /// The dilation the transforms work at, and the rows and columns of x per step of their
    /// window: (the conv's dilation, 1) at stride 1; (1, 2) for stride 2 with dilation 2 (x's even
    /// phase); (1, 1) for the stride-2 scheme.
    pub dil: usize,
    pub step: usize,
}

impl WinogradSizes {
    /// The tiles of `n` output maps of `out` = [OH, OW] of a conv with `stride` and dilation
    /// `dil`: per axis, ceil(size / 2 dil) blocks of 2 dil outputs, each `dil` interleaved tiles of
    /// 2 (stride 1); tiles of 2 outputs with stride 2 (dilation 2 runs as dilation 1 over x's even
    /// phase), whose stride-2 scheme (dilation 1) transforms each into 25 points.
    pub fn new(n: usize, c_in: usize, out: [usize; 2], stride: usize, dil: usize) -> WinogradSizes {
        let (dil, step, points) = match stride {
            1 => (dil, 1, 16),
            _ if dil == 2 => (1, 2, 16),
            _ => (1, 1, 25),
        };
        let tiles_yx = out.map(|size| size.div_ceil(2 * dil) * dil);
        let tiles = n.saturating_mul(tiles_yx[0]).saturating_mul(tiles_yx[1]);
        let (t_pad, k_pad) = (tiles.next_multiple_of(4), c_in.next_multiple_of(4));
        WinogradSizes { tiles_yx, tiles, t_pad, k_pad, points, dil, step }
    }

    /// The scratch tensors' dims for `c_out` output channels, in [`SCRATCH_SLOTS`] order:
    /// U [points, c_out, k_pad], V [points, k_pad, t_pad] and M [points, c_out, t_pad] (f32).
    pub fn scratch_dims(&self, c_out: usize) -> [[usize; 3]; 3] {
        let p = self.points;
        [[p, c_out, self.k_pad], [p, self.k_pad, self.t_pad], [p, c_out, self.t_pad]]
    }

    /// Bytes of U, V and M for `c_out` output channels (f32, [`Self::scratch_dims`]); usize::MAX
    /// for one that overflows.
    pub fn buffer_bytes(&self, c_out: usize) -> [usize; 3] {
        self.scratch_dims(c_out).map(|[p, rows, cols]| checked_product(&[4, p, rows, cols]))
    }

    /// Bytes of the three together; usize::MAX where that overflows.
    pub fn scratch_bytes(&self, c_out: usize) -> usize {
        self.buffer_bytes(c_out).iter().try_fold(0usize, |sum, &b| sum.checked_add(b)).unwrap_or(usize::MAX)
    }
}

/// The device scratch slots ([`Gpu::scratch`]) of U, V and M: every Winograd conv of a network
/// shares them (each conv's four launches write before they read). U takes its slot only where
/// the weights are not constant; a plan's get a buffer of their own, filled once
/// ([`Gpu::derived`]).
const SCRATCH_SLOTS: [&str; 3] = ["winograd U", "winograd V", "winograd M"];

/// The four launches of `conv` (already resolved to Winograd or WinogradStride2) on `gpu`, through
/// the device's scratch slots [`SCRATCH_SLOTS`].
pub(super) fn encode(
    conv: &Conv2d,
    gpu: &Gpu,
    g: &Geometry,
    [x, weight, affine, residual, output]: [&GpuTensor; 5],
) -> Result<Vec<Dispatch>> {
    let name = conv.name();
    let u = |what: &str, v: usize| to_u32(name, what, v);
    let ([n, c_in, h, w], [c_out, _, _], [oh, ow]) = (g.x, g.k, g.out);
    conv.shape_params(g)?; // x, weight and out element counts fit u32
    let sizes = WinogradSizes::new(n, c_in, [oh, ow], conv.stride[0], conv.dilation[0]);
    let WinogradSizes { tiles_yx: [tiles_y, tiles_x], tiles, t_pad, k_pad, points, dil, step } = sizes;
    // The weight and output transforms serve both schemes (POINTS per axis); the input transforms differ.
    let input_kernel =
        if points == 16 { kernel!("conv2d_winograd_input") } else { kernel!("conv2d_winograd_s2_input") };
    let per_axis = ("POINTS", if points == 16 { 4.0 } else { 5.0 });
    // Every scratch element index fits u32 (the shaders index with u32), and with it every launch's
    // invocation count (each at most a sixteenth of V's or M's elements).
    u("Winograd scratch element count", sizes.scratch_bytes(c_out) / 4)?;
    // Signed input coordinates (i32 in the shaders) reach 2 dil before and under 8 dil past the
    // map (F(2x2, 3x3) at step 2 the most; the stride-2 scheme 1 before and under 7 past).
    let signed = |what: &str, v: usize| {
        i32::try_from(v).map(|_| ()).map_err(|_| crate::Error::invalid(name, format!("{what} {v} is over i32::MAX")))
    };
    signed("padded height", h.saturating_add(8 * dil))?;
    signed("padded width", w.saturating_add(8 * dil))?;
    // `total`, the invocations each launch needs, is set per launch below.
    let mut p = WinogradParams {
        n: u("batch", n)?,
        c_in: u("input channels", c_in)?,
        h: u("height", h)?,
        w: u("width", w)?,
        c_out: u("output channels", c_out)?,
        oh: u("output height", oh)?,
        ow: u("output width", ow)?,
        dil: u("dilation", dil)?,
        tiles_y: u("tile rows", tiles_y)?,
        tiles_x: u("tile columns", tiles_x)?,
        tiles: u("tiles", tiles)?,
        t_pad: u("tiles", t_pad)?,
        k_pad: u("input channels", k_pad)?,
        epilogue: conv.epilogue.code(),
        total: 0,
        step: u("step", step)?,
    };
    let grid = |total: usize| gpu.grid_1d(name, total.div_ceil(WORKGROUP) as u64);
    // The transforms' divisors as override constants (see the shaders: lavapipe divides by a
    // runtime value one lane at a time); the kernels read these, not Params' copies. The stride-2
    // scheme's input transform has no dilation to divide by.
    let divisors =
        [("TILES_X", tiles_x as f64), ("PER_IMAGE", (tiles_y * tiles_x) as f64), ("QUADS", (t_pad / 4) as f64)];
    let dilation = ("DIL", dil as f64);
    let [u_dims, v_dims, [points, rows, cols]] = sizes.scratch_dims(c_out);
    // Few tiles: the GEMMs run as M^T = V^T U^T, tiles as rows (choose::winograd_transposed).
    let transposed = crate::ops::choose::winograd_transposed(gpu.profile(), c_out, k_pad, t_pad, points);
    let m_dims = if transposed { [points, cols, rows] } else { [points, rows, cols] };
    // U depends on the weights alone: computed once by a plan whose weights are constant.
    let u_t = gpu.derived(SCRATCH_SLOTS[0], &Shape::new(&u_dims)?, &[weight])?;
    let v_t = &gpu.scratch(SCRATCH_SLOTS[1], &Shape::new(&v_dims)?)?;
    let m_t = &gpu.scratch(SCRATCH_SLOTS[2], &Shape::new(&m_dims)?)?;

    let mut dispatches = Vec::with_capacity(4);
    let total = c_out * k_pad / 4; // 4 input channels per invocation
    p.total = u("invocations", total)?;
    let constants = [("ALIGNED", c_in.is_multiple_of(4) as u8 as f64), per_axis];
    let weight_pass =
        gpu.prepare(&kernel!("conv2d_winograd_weight"), &constants, &p, &[weight, &u_t.tensor], grid(total)?)?;
    dispatches.push(u_t.mark(weight_pass));
    let total = k_pad * t_pad / 4; // 4 tiles per invocation
    p.total = u("invocations", total)?;
    let mut input_constants = divisors.to_vec();
    if points == 16 {
        let wide = crate::ops::choose::winograd_input_rows_in_vec4s(step, w, ow);
        input_constants.extend([dilation, ("WIDE", wide as u8 as f64)]);
    }
    dispatches.push(gpu.prepare(&input_kernel, &input_constants, &p, &[x, v_t], grid(total)?)?.into_auxiliary());
    // The 16 (25) products [c_out, k_pad] x [k_pad, t_pad], or transposed [t_pad, k_pad] x
    // [k_pad, c_out] from the same V and U: whole vec4 rows on both sides.
    let products = if transposed {
        Matmul::new(true, true).encode(gpu, &[v_t, &u_t.tensor], m_t)?
    } else {
        Matmul::new(false, false).encode(gpu, &[&u_t.tensor, v_t], m_t)?
    };
    dispatches.extend(products.into_iter().map(Dispatch::into_auxiliary));
    let total = c_out * t_pad / 4; // 4 tiles (transposed: 4 channels) per invocation
    p.total = u("invocations", total)?;
    let mut constants =
        vec![("EPILOGUE", conv.epilogue.code() as f64), per_axis, ("TRANSPOSED", transposed as u8 as f64)];
    constants.extend(divisors);
    constants.extend([dilation, ("CHANNEL_QUADS", (c_out / 4) as f64)]);
    let wide = crate::ops::choose::winograd_output_rows_in_vec4s(ow, transposed);
    constants.push(("WIDE", wide as u8 as f64));
    let bindings = [m_t, affine, residual, output];
    dispatches.push(gpu.prepare(&kernel!("conv2d_winograd_output"), &constants, &p, &bindings, grid(total)?)?);
    Ok(dispatches)
}

/// Cases forced onto the Winograd kernels (conv2d's own reference checks them): maps of 1 x 1 and
/// 2 x 2 (tiles mostly past the edge), odd sizes at both dilations and at stride 2 (both schemes),
/// channel counts that are no multiple of 4 (K and N padded), more than one 64-row tile of output
/// channels, batches, every epilogue, and folded grids.
pub(super) fn cases(rng: &mut fastrand::Rng) -> Vec<crate::ops::Case> {
    use crate::ops::{Activation, Epilogue, SMALL_GRID};
    use Activation::{Relu, Sigmoid};
    let c = Conv2d { kernel: super::ConvKernel::Winograd, ..Conv2d::new() };
    let epi = |affine, activation, residual| c.epilogue(Epilogue { affine, activation, residual });
    let (d1, d2) = ([1, 1], [2, 2]);
    let mut table: Vec<(&str, Conv2d, &[usize], &[usize])> = vec![
        ("1x1 map, 3 -> 5, batch 2, affine+relu", epi(true, Relu, false).padding(d1), &[2, 3, 1, 1], &[5, 3, 3, 3]),
        (
            "2x2 map, 5 -> 7, batch 3, residual",
            epi(false, Activation::None, true).padding(d1),
            &[3, 5, 2, 2],
            &[7, 5, 3, 3],
        ),
        (
            "7x9, 8 -> 16, batch 2, affine+residual+relu",
            epi(true, Relu, true).padding(d1),
            &[2, 8, 7, 9],
            &[16, 8, 3, 3],
        ),
        ("13x17, 65 -> 70, sigmoid", epi(false, Sigmoid, false).padding(d1), &[1, 65, 13, 17], &[70, 65, 3, 3]),
        (
            "14x14, 24 -> 130, batch 3, affine",
            epi(true, Activation::None, false).padding(d1),
            &[3, 24, 14, 14],
            &[130, 24, 3, 3],
        ),
        ("56x56, 16 -> 20", c.padding(d1), &[1, 16, 56, 56], &[20, 16, 3, 3]),
        // Widths a multiple of 8: both transforms' WIDE paths (window rows and output rows as
        // vec4s), both dilations, edges on every side, input channels past a multiple of 4, several
        // images.
        (
            "wide rows: 9x16, 6 -> 10, batch 2, residual",
            epi(false, Activation::None, true).padding(d1),
            &[2, 6, 9, 16],
            &[10, 6, 3, 3],
        ),
        (
            "wide rows, dilation 2: 7x24, 5 -> 12, batch 2, affine+relu",
            epi(true, Relu, false).padding(d2).dilation(d2),
            &[2, 5, 7, 24],
            &[12, 5, 3, 3],
        ),
        ("dilation 2, 1x1 map, 3 -> 5", c.padding(d2).dilation(d2), &[1, 3, 1, 1], &[5, 3, 3, 3]),
        (
            "dilation 2, 3x3 map, 4 -> 9, batch 2, affine+relu",
            epi(true, Relu, false).padding(d2).dilation(d2),
            &[2, 4, 3, 3],
            &[9, 4, 3, 3],
        ),
        (
            "dilation 2, 5x9, 5 -> 12, batch 2, residual",
            epi(false, Activation::None, true).padding(d2).dilation(d2),
            &[2, 5, 5, 9],
            &[12, 5, 3, 3],
        ),
        (
            "dilation 2, 10x14, 32 -> 20, affine+residual+relu",
            epi(true, Relu, true).padding(d2).dilation(d2),
            &[1, 32, 10, 14],
            &[20, 32, 3, 3],
        ),
    ];
    // Few tiles (at most 52) and many output channels (a multiple of 4): on CPU devices with
    // subgroups the GEMMs run on matmul_rows_subgroup (choose::matmul_rows), at both dilations, on a
    // 1 x 1 map (1 tile) and with the stride-2 scheme below.
    table.push((
        "7x7, 12 -> 260 (GEMMs with short rows), affine+residual+relu",
        epi(true, Relu, true).padding(d1),
        &[1, 12, 7, 7],
        &[260, 12, 3, 3],
    ));
    table.push((
        "dilation 2, 5x6, 6 -> 264 (GEMMs with short rows), sigmoid",
        epi(false, Sigmoid, false).padding(d2).dilation(d2),
        &[1, 6, 5, 6],
        &[264, 6, 3, 3],
    ));
    table.push((
        "1x1 map, 3 -> 256 (GEMMs with short rows), residual",
        epi(false, Activation::None, true).padding(d1),
        &[1, 3, 1, 1],
        &[256, 3, 3, 3],
    ));
    // 196 tiles at batch 1 (a 28 x 28 output): the GEMMs on matmul_rows_subgroup in column tiles.
    table.push((
        "28x28 (196 tiles: GEMMs in column tiles), 8 -> 12, affine+relu",
        epi(true, Relu, false).padding(d1),
        &[1, 8, 28, 28],
        &[12, 8, 3, 3],
    ));
    // 72 tiles and 256 output channels: on 8-lane CPU devices (lavapipe) the GEMMs run transposed
    // (choose::winograd_transposed: these pad less as the rows of 16-row output tiles), at both
    // dilations and with the stride-2 scheme below.
    table.push((
        "16x18 (72 tiles), 4 -> 256 (transposed GEMMs), affine+residual+relu",
        epi(true, Relu, true).padding(d1),
        &[1, 4, 16, 18],
        &[256, 4, 3, 3],
    ));
    table.push((
        "dilation 2, 16x18, 4 -> 256 (transposed GEMMs), sigmoid",
        epi(false, Sigmoid, false).padding(d2).dilation(d2),
        &[1, 4, 16, 18],
        &[256, 4, 3, 3],
    ));
    // 7 x 7 maps at both dilations: a tile row of 4 tiles whose last reaches past the right edge.
    table.push((
        "7x7, 8 -> 12, batch 2, residual+relu",
        epi(false, Relu, true).padding(d1),
        &[2, 8, 7, 7],
        &[12, 8, 3, 3],
    ));
    table.push((
        "dilation 2, 7x7, 6 -> 12, batch 2, affine",
        epi(true, Activation::None, false).padding(d2).dilation(d2),
        &[2, 6, 7, 7],
        &[12, 6, 3, 3],
    ));
    // Stride 2 with dilation 2: F(2x2, 3x3) over x's even phase (odd sizes: the phase keeps the
    // last row and column).
    let d2s2 = c.stride([2, 2]).padding(d2).dilation(d2);
    let s2 = Conv2d { kernel: super::ConvKernel::WinogradStride2, ..c.stride([2, 2]).padding(d1) };
    table.push(("stride 2 dilation 2, 1x1 map, 3 -> 5", d2s2, &[1, 3, 1, 1], &[5, 3, 3, 3]));
    table.push((
        "stride 2 dilation 2, 13x9, 6 -> 12, batch 2, affine+residual+relu",
        d2s2.epilogue(Epilogue { affine: true, activation: Relu, residual: true }),
        &[2, 6, 13, 9],
        &[12, 6, 3, 3],
    ));
    table.push(("stride 2 dilation 2, 28x28, 32 -> 70", d2s2, &[1, 32, 28, 28], &[70, 32, 3, 3]));
    // A 16-wide output (15 rows: a last tile row of one): the output transform's WIDE stores.
    table.push((
        "stride 2 dilation 2, 29x32 (15x16 out), 5 -> 12, batch 2, affine+residual+relu",
        d2s2.epilogue(Epilogue { affine: true, activation: Relu, residual: true }),
        &[2, 5, 29, 32],
        &[12, 5, 3, 3],
    ));
    // The stride-2 scheme (25 points): maps of 1 x 1 and 2 x 2, odd sizes (a last tile with one
    // output row or column), 7 x 7 and 14 x 14 outputs, channels no multiple of 4, every epilogue.
    let s2_table: Vec<(&str, Conv2d, &[usize], &[usize])> = vec![
        (
            "1x1 map, 3 -> 5, batch 2, affine+relu",
            s2.epilogue(Epilogue { affine: true, activation: Relu, residual: false }),
            &[2, 3, 1, 1],
            &[5, 3, 3, 3],
        ),
        (
            "2x2 map, 5 -> 7, batch 3, residual",
            s2.epilogue(Epilogue { affine: false, activation: Activation::None, residual: true }),
            &[3, 5, 2, 2],
            &[7, 5, 3, 3],
        ),
        (
            "13x17, 65 -> 70, sigmoid",
            s2.epilogue(Epilogue { affine: false, activation: Sigmoid, residual: false }),
            &[1, 65, 13, 17],
            &[70, 65, 3, 3],
        ),
        (
            "14x14 (7x7 out), 8 -> 12, batch 2, affine+residual+relu",
            s2.epilogue(Epilogue { affine: true, activation: Relu, residual: true }),
            &[2, 8, 14, 14],
            &[12, 8, 3, 3],
        ),
        (
            "28x28, 24 -> 130, batch 3, affine",
            s2.epilogue(Epilogue { affine: true, activation: Activation::None, residual: false }),
            &[3, 24, 28, 28],
            &[130, 24, 3, 3],
        ),
        ("15x6, 4 -> 9", s2, &[1, 4, 15, 6], &[9, 4, 3, 3]),
        (
            "14x14 (7x7 out), 8 -> 260 (GEMMs with short rows), affine+relu",
            s2.epilogue(Epilogue { affine: true, activation: Relu, residual: false }),
            &[1, 8, 14, 14],
            &[260, 8, 3, 3],
        ),
        (
            "32x36 (16x18 out, 72 tiles), 4 -> 256 (transposed GEMMs), affine+relu",
            s2.epilogue(Epilogue { affine: true, activation: Relu, residual: false }),
            &[1, 4, 32, 36],
            &[256, 4, 3, 3],
        ),
        ("56x56, 16 -> 20", s2, &[1, 16, 56, 56], &[20, 16, 3, 3]),
        (
            "29x32 (15x16 out: the output transform's WIDE stores), 6 -> 12, batch 2, affine+residual+relu",
            s2.epilogue(Epilogue { affine: true, activation: Relu, residual: true }),
            &[2, 6, 29, 32],
            &[12, 6, 3, 3],
        ),
    ];
    let mut cases: Vec<_> = table
        .into_iter()
        .map(|(label, conv, x, weight)| super::cases::case(rng, &format!("winograd: {label}"), conv, x, weight))
        .collect();
    for (label, conv, x, weight) in s2_table {
        cases.push(super::cases::case(rng, &format!("winograd stride 2: {label}"), conv, x, weight));
    }
    // 9 images of 32 x 32 (16 x 16 outputs), 8 channels: 576 tiles, past SMALL_GRID workgroups.
    let folded = super::cases::case(rng, "winograd stride 2: folded grid", s2, &[9, 8, 32, 32], &[8, 8, 3, 3]);
    cases.push(folded.with_grid_limit(SMALL_GRID));
    // 9 images of 16 x 16, 8 channels: 576 tiles, past SMALL_GRID workgroups in the input and output
    // transforms and the GEMMs.
    let folded = super::cases::case(rng, "winograd: folded grid", c.padding(d1), &[9, 8, 16, 16], &[8, 8, 3, 3]);
    cases.push(folded.with_grid_limit(SMALL_GRID));
    cases
}
