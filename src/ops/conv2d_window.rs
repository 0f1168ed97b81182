//! conv2d's windowed kernel (shaders/conv2d_window_subgroup.wgsl): a stride-1 "same" 3 x 3 conv as
//! an implicit GEMM without workgroup memory, each lane reading its 4 pixels' taps from x as 3
//! aligned vec4s per (channel, kernel row). Which convs it takes: [`crate::ops::choose::conv2d`].

use super::{checked_product, Conv2d, Geometry};
use crate::ops::{to_u32, Op};
use crate::Result;

/// Mirrors `struct Params` in shaders/conv2d_window_subgroup.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Conv2dWindowParams {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    plane: u32,
    segs: u32,
    cols: u32,
    tiles_m: u32,
    tiles_n: u32,
    epilogue: u32,
    _pad: u32,
}

/// The override constants of a launch for subgroups of `width` lanes.
pub(super) fn constants(g: &Geometry, dilation: usize, width: u32) -> Vec<(&'static str, f64)> {
    let [_, _, h, w] = g.x;
    vec![
        ("SUBGROUP_WIDTH", width as f64),
        ("DIL", dilation as f64),
        ("ALIGNED", (h * w).is_multiple_of(4) as u8 as f64),
        ("ROW_PHASE", (w % 4) as f64),
    ]
}

/// The shader's parameters, every index range checked against u32, and the workgroup count for
/// subgroups of `width` lanes.
pub(super) fn params(conv: &Conv2d, g: &Geometry, width: usize) -> Result<(Conv2dWindowParams, u64)> {
    let name = conv.name();
    let u = |what: &str, v: usize| to_u32(name, what, v);
    let ([n, c_in, h, w], [c_out, _, _]) = (g.x, g.k);
    conv.shape_params(g)?; // x, weight and out element counts fit u32
    let plane = h * w;
    let segs = plane.div_ceil(4);
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
        plane: u("pixels per image", plane)?,
        segs: u("segments per image", segs)?,
        cols: u("segments", cols)?,
        tiles_m: u("output channel tiles", tiles_m)?,
        tiles_n: u("pixel segment tiles", tiles_n)?,
        epilogue: conv.epilogue.code(),
        _pad: 0,
    };
    Ok((params, (tiles_m as u64) * (tiles_n as u64)))
}
