//! conv2d's windowed kernel (shaders/conv2d_window_subgroup.wgsl): a 3 x 3 conv with stride 1 or 2
//! and padding = dilation, or a 1 x 1 conv with stride 1 or 2, as an implicit GEMM without workgroup
//! memory, each lane reading its 4 pixels' taps from x as 3 or 4 aligned vec4s per (channel, kernel
//! row), 1 to 3 for a 1 x 1 conv. Which convs it takes: [`crate::ops::choose::window_fits`].

use super::{checked_product, Conv2d, ConvKernel, Geometry};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::ops::{to_u32, Op};
use crate::Result;

/// The launch of `conv` on the windowed kernel over x, weight, affine, residual and output
/// `bindings` (conv2d's own, or conv2d_phased's even phase of x with the stride-1 conv `conv`).
pub(super) fn dispatch(conv: &Conv2d, gpu: &Gpu, g: &Geometry, bindings: [&GpuTensor; 5]) -> Result<Dispatch> {
    let width = gpu.profile().subgroup_width.expect("resolve checked the width");
    let (params, workgroups) = params(conv, g, width as usize)?;
    let grid = gpu.grid_1d(conv.name(), workgroups)?;
    gpu.prepare(&ConvKernel::WindowSubgroup.kernel(), &constants(conv, g, width), &params, &bindings, grid)
}

/// Mirrors `struct Params` in shaders/conv2d_window_subgroup.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Conv2dWindowParams {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    plane: u32,
    out_plane: u32,
    seg_row: u32,
    segs: u32,
    cols: u32,
    tiles_m: u32,
    tiles_n: u32,
    epilogue: u32,
    _pad: u32,
}

/// The override constants of a launch of `conv` (stride, padding and dilation the same on both
/// axes) for subgroups of `width` lanes.
fn constants(conv: &Conv2d, g: &Geometry, width: u32) -> Vec<(&'static str, f64)> {
    let ([_, _, h, w], [_, ksize, _], [oh, ow]) = (g.x, g.k, g.out);
    let (stride, pad, dilation) = (conv.stride[0], conv.padding[0], conv.dilation[0]);
    // Where a tap row's first element (kx = 0, pixel 0) sits inside its aligned vec4, the same for
    // every lane when x's planes are whole vec4s and so are the segments' starts: stride 1,
    // (ky DIL - PAD) W - PAD past the segment's first pixel (a multiple of 4); stride 2, with rows of
    // whole vec4s too, -PAD past 2 ox (a multiple of 8).
    let phased = (h * w).is_multiple_of(4) && (stride == 1 || w.is_multiple_of(4));
    // (0 where unused, so that launches running the same code share one pipeline.)
    let phase = |ky: usize| {
        if !phased || ky >= ksize {
            return 0.0;
        }
        let row = (ky * dilation) as isize - pad as isize;
        let offset = if stride == 1 { row * w as isize } else { 0 } - pad as isize;
        offset.rem_euclid(4) as f64
    };
    let out_vec4 = (oh * ow).is_multiple_of(4) && (stride == 1 || ow.is_multiple_of(4));
    vec![
        ("SUBGROUP_WIDTH", width as f64),
        ("KSIZE", ksize as f64),
        ("STRIDE", stride as f64),
        // (A 1 x 1 conv never reads DIL: 1 keeps its dilation from making another pipeline.)
        ("DIL", if ksize == 1 { 1.0 } else { dilation as f64 }),
        ("PAD", pad as f64),
        ("PHASED", phased as u8 as f64),
        ("PHASE0", phase(0)),
        ("PHASE1", phase(1)),
        ("PHASE2", phase(2)),
        ("OUT_VEC4", out_vec4 as u8 as f64),
        ("EPILOGUE", conv.epilogue.code() as f64),
    ]
}

/// The shader's parameters, every index range checked against u32, and the workgroup count for
/// subgroups of `width` lanes.
fn params(conv: &Conv2d, g: &Geometry, width: usize) -> Result<(Conv2dWindowParams, u64)> {
    let name = conv.name();
    let u = |what: &str, v: usize| to_u32(name, what, v);
    let ([n, c_in, h, w], [c_out, _, _], [oh, ow]) = (g.x, g.k, g.out);
    conv.shape_params(g)?; // x, weight and out element counts fit u32
                           // Stride 1: segments of 4 run through the plane; stride 2: through each output row.
    let seg_row = if conv.stride[0] == 1 { 0 } else { ow.div_ceil(4) };
    let segs = if conv.stride[0] == 1 { (oh * ow).div_ceil(4) } else { oh * seg_row };
    let cols = n * segs;
    let [tile_rows, tile_cols] = crate::ops::subgroup_tile(width);
    let (tiles_m, tiles_n) = (c_out.div_ceil(tile_rows), (4 * cols).div_ceil(tile_cols));
    u("output channel tiles", checked_product(&[tiles_m, tile_rows]))?;
    u("pixel segment tiles", checked_product(&[tiles_n, tile_cols]))?;
    // Flat tap offsets reach one padded row and a few elements either side of x (as i32).
    u("x element count plus a padded row", checked_product(&[n, c_in, h + 4, w + 4]).saturating_mul(2))?;
    let params = Conv2dWindowParams {
        n: u("batch", n)?,
        c_in: u("input channels", c_in)?,
        h: u("height", h)?,
        w: u("width", w)?,
        c_out: u("output channels", c_out)?,
        oh: u("output height", oh)?,
        ow: u("output width", ow)?,
        plane: u("pixels per image", h * w)?,
        out_plane: u("output pixels per image", oh * ow)?,
        seg_row: u("segments per row", seg_row)?,
        segs: u("segments per image", segs)?,
        cols: u("segments", cols)?,
        tiles_m: u("output channel tiles", tiles_m)?,
        tiles_n: u("pixel segment tiles", tiles_n)?,
        epilogue: conv.epilogue.code(),
        _pad: 0,
    };
    Ok((params, (tiles_m as u64) * (tiles_n as u64)))
}

#[cfg(test)]
mod tests {
    /// The windowed kernel holds its outputs as the other subgroup kernels do, a segment of 4
    /// pixels in place of a column quad (crate::ops::check_subgroup_layout).
    #[test]
    fn the_window_layout_covers_every_output_once_for_every_width() {
        for width in [4, 8, 16, 32, 64] {
            crate::ops::check_subgroup_layout(width);
        }
    }
}
