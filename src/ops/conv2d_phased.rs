//! conv2d's stride-2 kernels over phase planes: a gather pass (shaders/conv2d_phases.wgsl) lays x
//! out so that a stride-2 conv reads it at stride 1, then
//! - [`ConvKernel::PhasedSubgroup`]: the 7 x 7 / 2 stem (padding 3, any C_in) runs
//!   shaders/conv2d_phased_subgroup.wgsl over the 4 phase planes (even and odd rows x columns,
//!   bordered with zeros) of every channel, its weights' 7-tap rows padded to 8 by the same pass;
//! - [`ConvKernel::WindowSubsampled`]: a 3 x 3 / 2 conv with dilation 2 (padding 2), which reads only
//!   x's even rows and columns, runs as the stride-1, dilation-1, padding-1 conv2d_window_subgroup
//!   over that even phase alone (the same output size, ceil(H / 2) x ceil(W / 2)).
//!
//! Scratch: the phase planes and the padded weights, in two device scratch slots
//! ([`Gpu::scratch`], shared by every such conv: a network holds its largest): 4 (OH + 3)
//! (4 ceil(OW / 4) + 4) elements per input channel and image for the stem, a quarter of x for the
//! subsampled window. Which convs each takes: [`crate::ops::choose::phased_fits`] and
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
    by: u32,
    bx: u32,
    total: u32,
    _pad: [u32; 3],
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
    /// Always 0: the kernel ANDs the output lines it touches first with it (its touch_rows).
    zero: u32,
    _pad: [u32; 3],
}

/// How conv2d_phases lays out one tensor: `planes` planes of [h, w] become `phases` (1 or 4) planes
/// each of [ph, pw], element (i, j) of phase (a, b) holding the plane's (step (i - border) + a,
/// step (j - border) + b), 0 outside it.
struct PhaseLayout {
    planes: usize,
    h: usize,
    w: usize,
    step: usize,
    phases: usize,
    ph: usize,
    pw: usize,
    border: usize,
}

impl PhaseLayout {
    fn dims(&self) -> [usize; 4] {
        [self.planes, self.phases, self.ph, self.pw]
    }
}

/// The device scratch slots of x's phase planes and of the padded weights: two, as one conv reads
/// both at once.
const SLOT_X: &str = "conv2d_phases x";
const SLOT_WEIGHT: &str = "conv2d_phases weight";

/// Records the gather pass from `input` into `layout`'s output (marked by [`Gpu::derived`]: prepared
/// for a constant input, else auxiliary, writing the scratch `slot`); the pass and its output.
fn gather(
    conv: &Conv2d,
    gpu: &Gpu,
    input: &GpuTensor,
    layout: &PhaseLayout,
    slot: &'static str,
) -> Result<(Dispatch, GpuTensor)> {
    let name = conv.name();
    let u = |what: &str, v: usize| to_u32(name, what, v);
    let dims = layout.dims();
    let total = u("phase plane elements", checked_product(&dims))?;
    // A device scratch slot (gpu/scratch.rs): every phased conv of a plan shares one buffer per
    // slot; the padded weights of a plan's constant weights get their own, filled once.
    let out = gpu.derived(slot, &Shape::new(&dims)?, &[input])?;
    let params = PhasesParams {
        h: u("phase source height", layout.h)?,
        w: u("phase source width", layout.w)?,
        by: u("phase plane border", layout.border)?,
        bx: u("phase plane border", layout.border)?,
        total,
        _pad: [0; 3],
    };
    let grid = gpu.grid_1d(name, (total as u64).div_ceil(4 * 64))?;
    let constants = [
        ("STEP", layout.step as f64),
        ("PHASES", layout.phases as f64),
        ("PH", u("phase plane height", layout.ph)? as f64),
        ("PW", u("phase plane width", layout.pw)? as f64),
    ];
    let dispatch = gpu.prepare(&kernel!("conv2d_phases"), &constants, &params, &[input, &out.tensor], grid)?;
    Ok((out.mark(dispatch), out.tensor))
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
    let ([n, c_in, h, w], [c_out, _, _], [oh, ow]) = (g.x, g.k, g.out);
    // x, weight and out element counts fit u32.
    conv.shape_params(g)?;
    // The shader's phase planes: 2 border rows and columns (padding 3 at stride 2), 3 rows below
    // the last output row's, 2 vec4s past the last segment's start.
    let seg_row = ow.div_ceil(4);
    let planes = PhaseLayout { planes: n * c_in, h, w, step: 2, phases: 4, ph: oh + 3, pw: 4 * seg_row + 4, border: 2 };
    // W's tap rows [C_out x C_in x 7] of 7 taps, each padded to 8 (2 whole vec4s): the shader's loop
    // body is then one tap row, 2 steps of 4 k.
    let weights = PhaseLayout {
        planes: checked_product(&[c_out, c_in, 7]),
        h: 1,
        w: 7,
        step: 1,
        phases: 1,
        ph: 1,
        pw: 8,
        border: 0,
    };
    let (x_pass, xp) = gather(conv, gpu, x, &planes, SLOT_X)?;
    let (w_pass, wp) = gather(conv, gpu, weight, &weights, SLOT_WEIGHT)?;

    let width = gpu.profile().subgroup_width.expect("resolve checked the width") as usize;
    let segs = oh * seg_row;
    let cols = n * segs;
    // The tile as matmul_subgroup's for a C_out x (4 x segments) product: its subgroups' height and
    // column groups and workgroup size (the kernel's SUBGROUP_ROWS, COLUMN_GROUPS, WORKGROUP_SIZE).
    let tile = crate::ops::choose::matmul_tile(gpu.profile(), width, c_out, 4 * cols, 1);
    let [tile_rows, tile_cols] = tile.shape();
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
        zero: 0,
        _pad: [0; 3],
    };
    let [rows, column_groups, workgroup] = tile.constants(width);
    let constants = [
        ("SUBGROUP_WIDTH", width as f64),
        rows,
        column_groups,
        workgroup,
        ("OUT_VEC4", ow.is_multiple_of(4) as u8 as f64),
        ("EPILOGUE", conv.epilogue.code() as f64),
        ("TOUCH_OUT", crate::ops::choose::touch_outputs_first(gpu.profile(), oh * ow) as u8 as f64),
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
    conv.shape_params(g)?; // x, weight and out element counts fit u32 (conv2d_phases indexes x)
    let [n, c_in, h, w] = g.x;
    let even =
        PhaseLayout { planes: n * c_in, h, w, step: 2, phases: 1, ph: h.div_ceil(2), pw: w.div_ceil(2), border: 0 };
    let (x_pass, xe) = gather(conv, gpu, x, &even, SLOT_X)?;
    let dense =
        Conv2d { stride: [1, 1], padding: [1, 1], dilation: [1, 1], kernel: ConvKernel::WindowSubgroup, ..*conv };
    let dense_g = Geometry { x: [n, c_in, even.ph, even.pw], k: g.k, out: g.out };
    debug_assert_eq!(dense_g.out, [even.ph, even.pw], "the subsampled conv keeps the output size");
    let conv_pass = window::dispatch(&dense, gpu, &dense_g, [&xe, weight, affine, residual, output])?;
    Ok(vec![x_pass, conv_pass])
}
