//! A convolution with one group as repack_pixels + matmul_subgroup: the first pass copies x's
//! elements each output pixel reads at each tap (im2col; for a 1 x 1 conv without padding, x
//! subsampled by the stride) into scratch [N, C KH KW, P] whose rows are whole vec4s (P = OH x OW
//! rounded up to a multiple of 4), the second is the GEMM weight [M, C KH KW] x that B per image
//! with the conv's epilogue, storing only the OH x OW real columns of each row.
//!
//! Why: matmul_subgroup needs B's rows in whole aligned vec4s and reaches 80-100% of the 512^3
//! GEMM on lavapipe for 1 x 1 convs on 14 x 14 to 56 x 56 maps, while the kernels that took the rest
//! stayed far below: stride-2 downsamples through conv2d_window_subgroup (each lane loads twice the
//! elements it uses) and stride-1 convs on 7 x 7 maps (49 pixels per row straddle vec4s) through it
//! too. The copy is C x P elements against the GEMM's M x C x P multiply-adds (M >= 64 in every
//! network here). Figures: BENCHMARKS.md, "Repacked 1x1 GEMMs". With taps (3 x 3 convs on small
//! output maps, where Winograd's and the windowed kernel's tiles are mostly padding) the copy is
//! C KH KW x P elements, still 1 / M of the multiply-adds (BENCHMARKS.md, "Tiles by a cost model,
//! and im2col for the 3x3/2 convs on small maps").
//!
//! Scratch: N x C KH KW x P floats in the device's "repack_pixels" slot ([`Gpu::scratch`]), shared by
//! every repacked GEMM: a plan holds the few sizes the slot grew through, not a buffer per conv
//! (resnet50 at batch 8: one buffer per conv summed to 19.8 MiB, its largest is 6.1 MiB;
//! BENCHMARKS.md).

use super::{Dims, Matmul};
use crate::gpu::{DeviceProfile, Dispatch, Gpu, GpuTensor, Kernel};
use crate::ops::{to_u32, Epilogue};
use crate::{kernel, Error, Result, Shape};

/// Mirrors `struct Params` in shaders/repack_pixels.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RepackPixelsParams {
    rows: u32,
    h: u32,
    w: u32,
    pixels: u32,
    stride: [u32; 2],
    padding: [u32; 2],
    dilation: [u32; 2],
    _pad: [u32; 2],
}

/// Invocations per workgroup of repack_pixels (each writes one vec4).
const WORKGROUP: usize = 64;

/// The GEMM kernel the repacked path runs for `n` images, a weight of `m` rows of K = `k` and
/// `pixels` output pixels per image, where the device and K allow it: subgroups of one fixed width
/// (matmul_subgroup's) and K (input channels x taps) a multiple of 4 (the weight's rows are A's,
/// read as whole vec4s); matmul_rows_subgroup where the rows are short
/// ([`crate::ops::choose::matmul_rows`]); else an error naming what is missing.
pub(crate) fn check(op: &str, profile: &DeviceProfile, [n, m, k, pixels]: [usize; 4]) -> Result<Kernel> {
    if profile.subgroup_width.is_none() {
        return Err(Error::invalid(
            op,
            format!("the repacked GEMM needs subgroups of one fixed width from 4 to 64; {} has none", profile.name),
        ));
    }
    if !k.is_multiple_of(4) {
        return Err(Error::invalid(
            op,
            format!(
                "the repacked GEMM needs K (input channels x taps) a multiple of 4 (whole vec4 weight rows), got {k}"
            ),
        ));
    }
    if crate::ops::choose::matmul_rows(profile, m, k, pixels, n) {
        return Ok(kernel!("matmul_rows_subgroup"));
    }
    Ok(kernel!("matmul_subgroup"))
}

/// A conv with one group for the repacked path: its epilogue, [KH, KW] taps, [y, x] stride,
/// padding and dilation, and the [OH, OW] output map its caller's geometry computed from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Repacked {
    pub epilogue: Epilogue,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub out: [usize; 2],
}

impl Repacked {
    /// A stride-1 1 x 1 conv without padding over an [OH, OW] map.
    pub fn pointwise(epilogue: Epilogue, out: [usize; 2]) -> Repacked {
        Repacked { epilogue, kernel: [1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1], out }
    }

    /// The two dispatches for x [N, C, H, W] and the weight (M x C KH KW elements, row-major:
    /// [M, C, KH, KW] or [1, M, C]), affine [2, M] and residual shaped like `output` [N, M, OH, OW]
    /// (or [N, M, OH x OW]) where the epilogue has them. The caller has checked the shapes against
    /// each other; `op` names it in errors.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &self,
        gpu: &Gpu,
        op: &'static str,
        x: &GpuTensor,
        weight: &GpuTensor,
        affine: Option<&GpuTensor>,
        residual: Option<&GpuTensor>,
        output: &GpuTensor,
    ) -> Result<Vec<Dispatch>> {
        let [n, c, h, w] = x.shape().nchw(op, "x")?;
        let ([kh, kw], [sy, sx], [py, px], [dy, dx]) = (self.kernel, self.stride, self.padding, self.dilation);
        let k = c * kh * kw;
        let [oh, ow] = self.out;
        let pixels = oh * ow;
        let packed = pixels.next_multiple_of(4);
        let m = weight.shape().numel() / k;
        let gemm = check(op, gpu.profile(), [n, m, k, pixels])?;
        let u = |what: &str, v: usize| to_u32(op, what, v);
        // The shaders index x, the scratch and the output with u32.
        u("x element count", x.shape().numel())?;
        u("repacked input's element count", n * k * packed)?;
        u("output element count", n * m * pixels)?;
        let params = RepackPixelsParams {
            rows: u("rows (batch x channels x taps)", n * k)?,
            h: u("height", h)?,
            w: u("width", w)?,
            pixels: u("output pixels", pixels)?,
            stride: [u("stride", sy)?, u("stride", sx)?],
            padding: [u("padding", py)?, u("padding", px)?],
            dilation: [u("dilation", dy)?, u("dilation", dx)?],
            _pad: [0; 2],
        };
        // The device scratch slot (gpu/scratch.rs): every repacked GEMM of a plan shares one buffer.
        let scratch = gpu.scratch("repack_pixels", &Shape::new(&[n, k, packed])?)?;
        let grid = gpu.grid_1d(op, (n * k * packed / 4).div_ceil(WORKGROUP) as u64)?;
        // Two aligned vec4 loads per quad where its pixels are two pairs, each 2 apart on one row of x.
        let pairs = crate::ops::choose::pointwise(self.kernel, self.padding)
            && sx == 2
            && ow.is_multiple_of(2)
            && w.is_multiple_of(4)
            && pixels == packed;
        // The shader divides by OW, QUADS, KH x KW and KW as override constants (a multiply and a
        // shift there). (All fit in u32: ow <= w, packed / 4 and the taps <= the repacked element
        // count, checked above.)
        let constants = [
            ("PAIRS", pairs as u8 as f64),
            ("OW", ow as f64),
            ("QUADS", (packed / 4) as f64),
            ("KH", kh as f64),
            ("KW", kw as f64),
        ];
        let repack = gpu.prepare(&kernel!("repack_pixels"), &constants, &params, &[x, &scratch], grid)?;
        // The GEMM: the weight as A [1, M, C KH KW], the scratch as B [N, C KH KW, P]; its output
        // rows are the real OH x OW pixels.
        // Where the rows are short (7 x 7 output maps, or one 14 x 14 map), matmul_rows_subgroup
        // (see check).
        let matmul = Matmul::conv1x1(self.epilogue);
        let d = Dims { batch: n, a_batch: 1, b_batch: n, m, n: packed, k };
        let bindings = [weight, &scratch, affine.unwrap_or(weight), residual.unwrap_or(weight), output];
        let product = if gemm.name == "matmul_rows_subgroup" {
            super::rows::encode(&matmul, gpu, &d, bindings, pixels)?
        } else {
            matmul.encode_tiled(gpu, &d, &gemm, bindings, pixels)?
        };
        Ok(vec![repack.into_auxiliary(), product])
    }
}
