//! conv2d's implicit-GEMM kernels (shaders/conv2d_gemm.wgsl and conv2d_gemm_subgroup.wgsl): per
//! group, output channels x (batch, pixels) tiles in workgroup memory, K = input channels x taps.

use super::{checked_product, Conv2d, ConvShapeParams, Geometry};
use crate::ops::{to_u32, Op};
use crate::{ensure, Result};

/// K (input channels per group x taps) the implicit GEMM takes: below 2^24, where its f32
/// reciprocal division is exact.
pub const MAX_K: usize = 1 << 24;

/// Mirrors `struct Params` in shaders/conv2d_gemm*.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Conv2dGemmParams {
    shape: ConvShapeParams,
    groups: u32,
    k: u32,
    cols: u32,
    tiles_m: u32,
    tiles_n: u32,
    epilogue: u32,
    _pad: u32,
    inv_taps: f32,
    inv_kw: f32,
    _pad2: [u32; 2],
}

/// The override constants of a launch for subgroups of `width` lanes (`None`: the portable kernel)
/// with epilogue bits `epilogue` (the subgroup kernel's EPILOGUE).
pub(super) fn constants(
    g: &Geometry,
    cin_per_group: usize,
    stride_x: usize,
    width: Option<u32>,
    epilogue: u32,
) -> Vec<(&'static str, f64)> {
    let a_vec4 = (cin_per_group * g.k[1] * g.k[2]).is_multiple_of(4);
    let mut constants = vec![("A_VEC4", a_vec4 as u8 as f64)];
    if let Some(width) = width {
        constants.push(("SUBGROUP_WIDTH", width as f64));
        // Column quads of 4 neighbouring pixels in one output row, read 1 or 2 input pixels apart
        // (see the shader's QUAD_STRIDE), and 1 x 1 kernels without tap arithmetic.
        let quad_stride = if g.out[1].is_multiple_of(4) && stride_x <= 2 { stride_x } else { 0 };
        constants.push(("QUAD_STRIDE", quad_stride as f64));
        constants.push(("ONE_TAP", (g.k[1] * g.k[2] == 1) as u8 as f64));
        constants.push(("EPILOGUE", epilogue as f64));
    }
    constants
}

/// The shader's parameters, every index range checked against u32, and the workgroup count for
/// subgroups of `width` lanes.
pub(super) fn params(conv: &Conv2d, g: &Geometry, width: usize) -> Result<(Conv2dGemmParams, u64)> {
    let name = conv.name();
    let u = |what: &str, v: usize| to_u32(name, what, v);
    let ([n, c_in, _, _], [c_out, kh, kw], [oh, ow]) = (g.x, g.k, g.out);
    let groups = conv.groups;
    let (cin_g, cout_g) = (c_in / groups, c_out / groups);
    // Padded coordinates (oy * stride + ky * dilation) stay inside the padded input: checked there.
    let shape = conv.shape_params(g)?;
    let k = cin_g * kh * kw;
    // The shaders split k into (channel, tap) with f32 reciprocals, exact below 2^24
    // (crate::ops::choose gives larger K to the direct kernel).
    ensure!(k < MAX_K, name, "K = {k} (input channels per group x taps) must be below {MAX_K} for the implicit GEMM");
    let cols = n * oh * ow;
    let [tile_rows, tile_cols] = crate::ops::subgroup_tile(width);
    let (tiles_m, tiles_n) = (cout_g.div_ceil(tile_rows), cols.div_ceil(tile_cols));
    u("output channel tiles", checked_product(&[tiles_m, tile_rows]))?;
    u("output column tiles", checked_product(&[tiles_n, tile_cols]))?;
    let workgroups = (groups as u64) * (tiles_m as u64) * (tiles_n as u64);
    let params = Conv2dGemmParams {
        shape,
        groups: u("groups", groups)?,
        k: u("K", k)?,
        cols: u("output pixels", cols)?,
        tiles_m: u("output channel tiles", tiles_m)?,
        tiles_n: u("output column tiles", tiles_n)?,
        epilogue: conv.epilogue.code(),
        _pad: 0,
        inv_taps: 1.0 / (kh * kw) as f32,
        inv_kw: 1.0 / kw as f32,
        _pad2: [0; 2],
    };
    Ok((params, workgroups))
}

#[cfg(test)]
mod tests {
    use crate::ops::subgroup_tile as tile;

    /// The shaders' layout for subgroups of `width` lanes, replayed on the CPU: the outputs and
    /// broadcasts as every subgroup GEMM holds them (crate::ops::check_subgroup_layout), and, from
    /// `stage_a` and `stage_b` in conv2d_gemm_subgroup.wgsl, both staged slices written exactly once
    /// per step, within their 512-vec4 arrays.
    fn check_layout(width: usize) {
        let [tr, tc] = tile(width);
        let (sc, kt) = (tc / (4 * width), 2048 / tc);
        let (tcq, ktq) = (tc / 4, kt / 4);
        assert_eq!(tr, 16 * (64 / width) / sc, "width {width}");
        assert!(tr * ktq <= 512 && kt * tcq <= 512 && kt % 4 == 0, "width {width}: tiles fit");
        crate::ops::check_subgroup_layout(width);
        let mut a = vec![0u8; tr * ktq];
        let mut b = vec![0u8; kt * tcq];
        for lid in 0..64 {
            for e in (lid..tr * ktq).step_by(64) {
                a[(e / ktq) * ktq + e % ktq] += 1;
            }
            for kl in (lid / tcq..kt).step_by(64 / tcq) {
                b[kl * tcq + lid % tcq] += 1;
            }
        }
        assert!(a.iter().chain(&b).all(|&n| n == 1), "width {width}: each staged vec4 written once");
    }

    #[test]
    fn the_layout_covers_every_output_once_for_every_width() {
        let want = [(4, [64, 64]), (8, [64, 64]), (16, [64, 64]), (32, [32, 128]), (64, [16, 256])];
        for (width, tile_rc) in want {
            assert_eq!(tile(width), tile_rc, "width {width}");
            check_layout(width);
        }
    }
}
