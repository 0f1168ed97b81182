//! conv2d's Winograd F(2x2, 3x3) kernel for 3 x 3 convs with stride 1, padding = dilation (1 or 2)
//! and one group ([`crate::ops::choose::winograd_fits`]): four launches, the weight transform
//! (shaders/conv2d_winograd_weight.wgsl), the input transform into a scratch V
//! (conv2d_winograd_input), the 16 GEMMs M[e] = U[e] V[e] as one batched [`Matmul`] (the kernel
//! `choose::matmul` picks for whole vec4 rows: matmul_subgroup, or matmul_vec4 without subgroups),
//! and the output transform fused with the epilogue (conv2d_winograd_output). The scheme and the
//! tile layout: the header of conv2d_winograd_input.wgsl.
//!
//! The GEMMs do 16 multiply-adds per 2 x 2 output tile per (input, output channel), the direct
//! sum 36: 2.25x fewer where the tiles fill the map (even sizes; a 7 x 7 map is 16 tiles for 49
//! pixels, 1.7x fewer). The bench's GFLOP/s for a conv stays the direct conv's count over the time
//! (the effective rate, the standard way convs are compared), so Winograd rows can pass the GEMM.

use super::{checked_product, Conv2d, Geometry};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::ops::matmul::Matmul;
use crate::ops::{to_u32, Op};
use crate::{kernel, Result, Shape};

/// Mirrors `struct Params` in the three shaders/conv2d_winograd_*.wgsl.
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
    _pad: u32,
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
}

impl WinogradSizes {
    /// The tiles of `n` output maps of `out` = [OH, OW] with dilation `dil`: per axis,
    /// ceil(size / 2 dil) blocks of 2 dil outputs, each `dil` interleaved tiles of 2.
    pub fn new(n: usize, c_in: usize, out: [usize; 2], dil: usize) -> WinogradSizes {
        let tiles_yx = out.map(|size| size.div_ceil(2 * dil) * dil);
        let tiles = n.saturating_mul(tiles_yx[0]).saturating_mul(tiles_yx[1]);
        WinogradSizes { tiles_yx, tiles, t_pad: tiles.next_multiple_of(4), k_pad: c_in.next_multiple_of(4) }
    }

    /// The scratch tensors' dims for `c_out` output channels, in [`SCRATCH_SLOTS`] order:
    /// U [16, c_out, k_pad], V [16, k_pad, t_pad] and M [16, c_out, t_pad] (f32).
    pub fn scratch_dims(&self, c_out: usize) -> [[usize; 3]; 3] {
        [[16, c_out, self.k_pad], [16, self.k_pad, self.t_pad], [16, c_out, self.t_pad]]
    }

    /// Bytes of scratch for `c_out` output channels (the three of [`Self::scratch_dims`]);
    /// usize::MAX where that overflows.
    pub fn scratch_bytes(&self, c_out: usize) -> usize {
        self.scratch_dims(c_out)
            .iter()
            .try_fold(0usize, |sum, dims| sum.checked_add(checked_product(&[4, dims[0], dims[1], dims[2]])))
            .unwrap_or(usize::MAX)
    }
}

/// The device scratch slots ([`Gpu::scratch`]) of U, V and M: every Winograd conv of a network
/// shares them (each conv's four launches write before they read).
const SCRATCH_SLOTS: [&str; 3] = ["winograd U", "winograd V", "winograd M"];

/// The four launches of `conv` (already resolved to Winograd) on `gpu`, through the device's
/// scratch slots [`SCRATCH_SLOTS`].
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
    let dil = conv.dilation[0];
    let sizes = WinogradSizes::new(n, c_in, [oh, ow], dil);
    let WinogradSizes { tiles_yx: [tiles_y, tiles_x], tiles, t_pad, k_pad } = sizes;
    // Every scratch element index fits u32 (the shaders index with u32), and with it every launch's
    // invocation count (each at most a sixteenth of V's or M's elements).
    u("Winograd scratch element count", sizes.scratch_bytes(c_out) / 4)?;
    // Signed input coordinates (i32 in the shaders) reach dil before and 3 dil past the map.
    let signed = |what: &str, v: usize| {
        i32::try_from(v).map(|_| ()).map_err(|_| crate::Error::invalid(name, format!("{what} {v} is over i32::MAX")))
    };
    signed("padded height", h.saturating_add(4 * dil))?;
    signed("padded width", w.saturating_add(4 * dil))?;
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
        _pad: 0,
    };
    let grid = |total: usize| gpu.grid_1d(name, total.div_ceil(WORKGROUP) as u64);
    let [u_dims, v_dims, m_dims] = sizes.scratch_dims(c_out);
    // U depends on the weights alone: computed once by a plan whose weights are constant.
    let u_t = gpu.derived(SCRATCH_SLOTS[0], &Shape::new(&u_dims)?, &[weight])?;
    let v_t = &gpu.scratch(SCRATCH_SLOTS[1], &Shape::new(&v_dims)?)?;
    let m_t = &gpu.scratch(SCRATCH_SLOTS[2], &Shape::new(&m_dims)?)?;

    let mut dispatches = Vec::with_capacity(4);
    let total = c_out * k_pad / 4; // 4 input channels per invocation
    p.total = u("invocations", total)?;
    let aligned = [("ALIGNED", c_in.is_multiple_of(4) as u8 as f64)];
    let weight_pass =
        gpu.prepare(&kernel!("conv2d_winograd_weight"), &aligned, &p, &[weight, &u_t.tensor], grid(total)?)?;
    dispatches.push(u_t.mark(weight_pass));
    let total = k_pad * t_pad / 4; // 4 tiles per invocation
    p.total = u("invocations", total)?;
    dispatches.push(gpu.prepare(&kernel!("conv2d_winograd_input"), &[], &p, &[x, v_t], grid(total)?)?.into_auxiliary());
    // The 16 products [c_out, k_pad] x [k_pad, t_pad]: whole vec4 rows on both sides.
    let products = Matmul::new(false, false).encode(gpu, &[&u_t.tensor, v_t], m_t)?;
    dispatches.extend(products.into_iter().map(Dispatch::into_auxiliary));
    let total = c_out * t_pad / 4; // 4 tiles per invocation
    p.total = u("invocations", total)?;
    let constants = [("EPILOGUE", conv.epilogue.code() as f64)];
    let bindings = [m_t, affine, residual, output];
    dispatches.push(gpu.prepare(&kernel!("conv2d_winograd_output"), &constants, &p, &bindings, grid(total)?)?);
    Ok(dispatches)
}

/// Cases forced onto the Winograd kernel (conv2d's own reference checks them): maps of 1 x 1 and
/// 2 x 2 (tiles mostly past the edge), odd sizes at both dilations, channel counts that are no
/// multiple of 4 (K and N padded), more than one 64-row tile of output channels, batches, every
/// epilogue, and a folded grid.
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
    let mut cases: Vec<_> = table
        .into_iter()
        .map(|(label, conv, x, weight)| super::cases::case(rng, &format!("winograd: {label}"), conv, x, weight))
        .collect();
    // 9 images of 16 x 16, 8 channels: 576 tiles, past SMALL_GRID workgroups in the input and output
    // transforms and the GEMMs.
    let folded = super::cases::case(rng, "winograd: folded grid", c.padding(d1), &[9, 8, 16, 16], &[8, 8, 3, 3]);
    cases.push(folded.with_grid_limit(SMALL_GRID));
    cases
}
