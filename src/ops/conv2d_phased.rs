//! conv2d's stride-2 kernels over phase planes: a gather pass (shaders/conv2d_phases.wgsl) lays x
//! out so that a stride-2 conv reads it at stride 1, then
//! - [`ConvKernel::PhasedSubgroup`]: a K x K / 2 conv (K = 3, 5, 7, padding (K - 1) / 2, any C_in;
//!   the 7 x 7 / 2 stem) runs shaders/conv2d_phased_subgroup.wgsl over the 4 phase planes (even and
//!   odd rows x columns, bordered with zeros) of every channel, its weights padded to rows of whole
//!   vec4s by the same pass;
//! - [`ConvKernel::WindowPlanes`]: a 3 x 3 / 2 conv (padding 1, C_in a multiple of 4) runs
//!   conv2d_window_subgroup's PLANES4 form over the 4 phase planes of every channel (no border: each
//!   OH x OW, padded by whole rows to whole vec4s), as a stride-1 conv;
//! - [`ConvKernel::WindowSubsampled`]: a 3 x 3 / 2 conv with dilation 2 (padding 2), which reads only
//!   x's even rows and columns, runs as the stride-1, dilation-1, padding-1 conv2d_window_subgroup
//!   over that even phase alone (the same output size, ceil(H / 2) x ceil(W / 2)).
//!
//! Scratch: each encode allocates its phase planes (held by the bind groups): 4 (ceil(H / 2) + 3)
//! (OW + 4) elements per input channel and image for the stem, a quarter of x for the subsampled
//! window, and the padded weights. Which convs each takes: [`crate::ops::choose::phased_fits`] and
//! [`crate::ops::choose::subsampled_window_fits`].

use super::{checked_product, window, Conv2d, ConvKernel, Geometry};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::ops::{to_u32, Op};
use crate::{kernel, Result, Shape};

/// Mirrors `struct Params` in shaders/conv2d_phases.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PhasesParams {
    h: u32,
    w: u32,
    ph: u32,
    pw: u32,
    by: u32,
    bx: u32,
    total: u32,
    _pad: u32,
}

/// Mirrors `struct Params` in shaders/conv2d_phased_subgroup.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Conv2dPhasedParams {
    c_in: u32,
    c_out: u32,
    ow: u32,
    out_plane: u32,
    seg_row: u32,
    segs: u32,
    cols: u32,
    tiles_m: u32,
    tiles_n: u32,
    row4: u32,
    plane4: u32,
    epilogue: u32,
}

/// How conv2d_phases lays out one tensor: `planes` planes of [h, w] become `phases` (1 or 4) planes
/// each of [ph, pw], element (i, j) of phase (a, b) holding the plane's (step (i - border) + a,
/// step (j - border) + b), 0 outside it.
struct Layout {
    planes: usize,
    h: usize,
    w: usize,
    step: usize,
    phases: usize,
    ph: usize,
    pw: usize,
    border: usize,
}

impl Layout {
    fn dims(&self) -> [usize; 4] {
        [self.planes, self.phases, self.ph, self.pw]
    }
}

/// Allocates `layout`'s output and records the gather pass from `input` into it.
fn gather(conv: &Conv2d, gpu: &Gpu, input: &GpuTensor, layout: &Layout) -> Result<(GpuTensor, Dispatch)> {
    let name = conv.name();
    let u = |what: &str, v: usize| to_u32(name, what, v);
    let dims = layout.dims();
    let total = u("phase plane elements", checked_product(&dims))?;
    let out = gpu.empty(&Shape::new(&dims)?)?;
    let params = PhasesParams {
        h: u("phase source height", layout.h)?,
        w: u("phase source width", layout.w)?,
        ph: u("phase plane height", layout.ph)?,
        pw: u("phase plane width", layout.pw)?,
        by: u("phase plane border", layout.border)?,
        bx: u("phase plane border", layout.border)?,
        total,
        _pad: 0,
    };
    let grid = gpu.grid_1d(name, (total as u64).div_ceil(4 * 64))?;
    let constants = [("STEP", layout.step as f64), ("PHASES", layout.phases as f64)];
    let dispatch = gpu.prepare(&kernel!("conv2d_phases"), &constants, &params, &[input, &out], grid)?;
    Ok((out, dispatch))
}

/// The dispatches of a [`ConvKernel::PhasedSubgroup`] conv: x's phase planes, the padded weights,
/// the conv.
pub(super) fn encode_phased(
    conv: &Conv2d,
    gpu: &Gpu,
    g: &Geometry,
    [x, weight, affine, residual, output]: [&GpuTensor; 5],
) -> Result<Vec<Dispatch>> {
    let name = conv.name();
    let u = |what: &str, v: usize| to_u32(name, what, v);
    let ([n, c_in, h, w], [c_out, k, _], [oh, ow]) = (g.x, g.k, g.out);
    conv.shape_params(g)?; // x, weight and out element counts fit u32
    let pad = conv.padding[0];
    let border = pad.div_ceil(2);
    // The lowest phase-plane row a segment's taps reach below its output row (header of the shader).
    let below = (0..k).map(|ky| (ky + 2 * border - pad) / 2).max().unwrap_or(0);
    let seg_row = ow.div_ceil(4);
    let planes = Layout { planes: n * c_in, h, w, step: 2, phases: 4, ph: oh + below, pw: 4 * seg_row + 4, border };
    let taps_row = 4 * k.div_ceil(4);
    let weights = Layout { planes: c_out * c_in, h: k, w: k, step: 1, phases: 1, ph: k, pw: taps_row, border: 0 };
    let (xp, x_pass) = gather(conv, gpu, x, &planes)?;
    let (wp, w_pass) = gather(conv, gpu, weight, &weights)?;

    let width = gpu.profile().subgroup_width.expect("resolve checked the width") as usize;
    let segs = oh * seg_row;
    let cols = n * segs;
    let [tile_rows, tile_cols] = crate::ops::subgroup_tile(width);
    let (tiles_m, tiles_n) = (c_out.div_ceil(tile_rows), (4 * cols).div_ceil(tile_cols));
    u("output channel tiles", checked_product(&[tiles_m, tile_rows]))?;
    u("pixel segment tiles", checked_product(&[tiles_n, tile_cols]))?;
    let params = Conv2dPhasedParams {
        c_in: u("input channels", c_in)?,
        c_out: u("output channels", c_out)?,
        ow: u("output width", ow)?,
        out_plane: u("output pixels per image", oh * ow)?,
        seg_row: u("segments per row", seg_row)?,
        segs: u("segments per image", segs)?,
        cols: u("segments", cols)?,
        tiles_m: u("output channel tiles", tiles_m)?,
        tiles_n: u("pixel segment tiles", tiles_n)?,
        row4: u("phase plane row", planes.pw / 4)?,
        plane4: u("phase plane", planes.ph * planes.pw / 4)?,
        epilogue: conv.epilogue.code(),
    };
    let constants = [
        ("SUBGROUP_WIDTH", width as f64),
        ("KSIZE", k as f64),
        ("PAD", pad as f64),
        ("OUT_VEC4", ow.is_multiple_of(4) as u8 as f64),
    ];
    let grid = gpu.grid_1d(name, (tiles_m as u64) * (tiles_n as u64))?;
    let bindings = [&xp, &wp, affine, residual, output];
    let conv_pass = gpu.prepare(&ConvKernel::PhasedSubgroup.kernel(), &constants, &params, &bindings, grid)?;
    Ok(vec![x_pass, w_pass, conv_pass])
}

/// The dispatches of a [`ConvKernel::WindowSubsampled`] conv: x's even rows and columns, then the
/// windowed kernel's stride-1 dilation-1 3 x 3 conv over them (padding 1 there is padding 2 in x).
pub(super) fn encode_subsampled(
    conv: &Conv2d,
    gpu: &Gpu,
    g: &Geometry,
    [x, weight, affine, residual, output]: [&GpuTensor; 5],
) -> Result<Vec<Dispatch>> {
    let [n, c_in, h, w] = g.x;
    let even = Layout { planes: n * c_in, h, w, step: 2, phases: 1, ph: h.div_ceil(2), pw: w.div_ceil(2), border: 0 };
    let (xe, x_pass) = gather(conv, gpu, x, &even)?;
    let dense =
        Conv2d { stride: [1, 1], padding: [1, 1], dilation: [1, 1], kernel: ConvKernel::WindowSubgroup, ..*conv };
    let dense_g = Geometry { x: [n, c_in, even.ph, even.pw], k: g.k, out: g.out };
    debug_assert_eq!(dense_g.out, [even.ph, even.pw], "the subsampled conv keeps the output size");
    let width = gpu.profile().subgroup_width.expect("resolve checked the width");
    let (params, workgroups) = window::params(&dense, &dense_g, width as usize)?;
    let grid = gpu.grid_1d(conv.name(), workgroups)?;
    let constants = window::constants(&dense, &dense_g, width);
    let bindings = [&xe, weight, affine, residual, output];
    let conv_pass = gpu.prepare(&ConvKernel::WindowSubgroup.kernel(), &constants, &params, &bindings, grid)?;
    Ok(vec![x_pass, conv_pass])
}

/// The dispatches of a [`ConvKernel::WindowPlanes`] conv: x's 4 phase planes, each OH x OW (OH
/// padded so that a plane is whole vec4s: the kernel's tap offsets are then constants), then the
/// windowed kernel's PLANES4 form.
pub(super) fn encode_planes(
    conv: &Conv2d,
    gpu: &Gpu,
    g: &Geometry,
    [x, weight, affine, residual, output]: [&GpuTensor; 5],
) -> Result<Vec<Dispatch>> {
    let ([n, c_in, h, w], [oh, ow]) = (g.x, g.out);
    let ph = (oh..).find(|rows| (rows * ow).is_multiple_of(4)).expect("4 rows always make whole vec4s");
    let planes = Layout { planes: n * c_in, h, w, step: 2, phases: 4, ph, pw: ow, border: 0 };
    let (xp, x_pass) = gather(conv, gpu, x, &planes)?;
    // Params as for a stride-1 conv over [n, c_in, ph, ow]: `plane` is a phase plane's pitch.
    let dense =
        Conv2d { stride: [1, 1], padding: [1, 1], dilation: [1, 1], kernel: ConvKernel::WindowSubgroup, ..*conv };
    let dense_g = Geometry { x: [n, c_in, ph, ow], k: g.k, out: g.out };
    let width = gpu.profile().subgroup_width.expect("resolve checked the width");
    let (params, workgroups) = window::params(&dense, &dense_g, width as usize)?;
    let grid = gpu.grid_1d(conv.name(), workgroups)?;
    let constants = window::planes4_constants(ow, oh, width);
    let bindings = [&xp, weight, affine, residual, output];
    let conv_pass = gpu.prepare(&ConvKernel::WindowPlanes.kernel(), &constants, &params, &bindings, grid)?;
    Ok(vec![x_pass, conv_pass])
}
