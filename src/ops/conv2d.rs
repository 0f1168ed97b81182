//! conv2d: 2-D convolution (zero padding, stride, dilation, groups) with a
//! fused [`Epilogue`] (folded BatchNorm / bias, residual, activation).

use super::{expect_inputs, expect_output, shapes_of, to_u32, Activation, Cost, Epilogue, Op};
use crate::gpu::{DeviceProfile, Dispatch, Gpu, GpuTensor, Kernel};
use crate::{ensure, kernel, Error, Result, Shape, Tensor};

/// A PyTorch-style `Conv2d` (no bias: a bias is the epilogue's shift).
/// Inputs: `x` [N, C_in, H, W], `weight` [C_out, C_in / groups, KH, KW], then the
/// epilogue's `affine` [2, C_out] and `residual` [N, C_out, OH, OW].
/// Output [N, C_out, OH, OW] with OH = (H + 2 * pad - dil * (KH - 1) - 1) / stride + 1.
/// One dispatch, the residual included (5 storage buffers: over wgpu's
/// downlevel 4, within WebGPU's default 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Step between output pixels, [y, x].
    pub stride: [usize; 2],
    /// Zeros added on each side, [y, x].
    pub padding: [usize; 2],
    /// Spacing between kernel taps, [y, x].
    pub dilation: [usize; 2],
    /// Channel groups: C_in and C_out are both split into `groups` independent convs.
    pub groups: usize,
    /// What happens to each accumulated value before it is stored.
    pub epilogue: Epilogue,
    /// Which kernel runs.
    pub kernel: ConvKernel,
}

/// The convolution kernels; all compute the same sums in the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKernel {
    /// The one [`crate::ops::choose::conv2d`] picks for the device and the shapes.
    Auto,
    /// conv2d: direct, any device, any shape.
    Direct,
    /// conv2d_gemm: implicit GEMM, any device, any shape.
    Gemm,
    /// conv2d_gemm_subgroup: implicit GEMM, any shape, subgroups of any width the profile accepts.
    GemmSubgroup,
    /// conv2d_window_subgroup: implicit GEMM without workgroup memory for 3 x 3 convs with stride 1
    /// or 2 and padding = dilation, and 1 x 1 convs with stride 1 or 2 and no padding
    /// ([`crate::ops::choose::window_fits`]), subgroups of any width the profile accepts.
    WindowSubgroup,
    /// conv2d_phases, then conv2d_phased_subgroup: the 7 x 7 / 2 stem (padding 3, any input channel
    /// count) over x's phase planes
    /// ([`crate::ops::choose::phased_fits`]), subgroups of any width the profile accepts.
    PhasedSubgroup,
    /// conv2d_phases, then conv2d_window_subgroup: 3 x 3 / 2 convs with dilation 2 as stride-1 convs
    /// over x's even rows and columns ([`crate::ops::choose::subsampled_window_fits`]).
    WindowSubsampled,
    /// repack_pixels then matmul_subgroup (matmul_repack.rs): x's elements under each tap gathered
    /// into rows of whole vec4s (for a 1 x 1 conv without padding, x subsampled by its stride;
    /// otherwise im2col), then one GEMM; any taps, stride, padding and dilation, one group, input
    /// channels x taps a multiple of 4 ([`crate::ops::choose::repack_fits`]), subgroups of any
    /// width the profile accepts. Auto takes it for strided 1 x 1 convs and 3 x 3 / 2 ones on small
    /// maps. Its GEMM is matmul_rows_subgroup on output maps of at most 52 pixels with output
    /// channels a multiple of 4 ([`crate::ops::choose::matmul_rows`]).
    RepackSubgroup,
    /// Winograd F(2x2, 3x3): 3 x 3 convs with stride 1, padding = dilation (1 or 2), or stride 2
    /// with padding = dilation = 2 (over x's even phase), one group
    /// ([`crate::ops::choose::winograd_fits`]); transforms plus 16 batched matmuls, any device.
    Winograd,
    /// The stride-2 Winograd scheme (conv2d_winograd_s2_input, the shared weight and output
    /// transforms with 5 points per axis): 3 x 3 convs with stride 2, padding 1,
    /// dilation 1, one group ([`crate::ops::choose::winograd_s2_fits`]); transforms plus 25 batched
    /// matmuls, any device.
    WinogradStride2,
}

impl ConvKernel {
    /// The shader this (resolved) kernel runs.
    pub fn kernel(self) -> Kernel {
        match self {
            ConvKernel::Auto | ConvKernel::Direct => kernel!("conv2d"),
            ConvKernel::Gemm => kernel!("conv2d_gemm"),
            ConvKernel::GemmSubgroup => kernel!("conv2d_gemm_subgroup"),
            ConvKernel::WindowSubgroup | ConvKernel::WindowSubsampled => kernel!("conv2d_window_subgroup"),
            ConvKernel::PhasedSubgroup => kernel!("conv2d_phased_subgroup"),
            // The GEMM, after its repack pass.
            ConvKernel::RepackSubgroup => kernel!("matmul_subgroup"),
            // The output transform: the launch that writes the conv's output.
            ConvKernel::Winograd | ConvKernel::WinogradStride2 => kernel!("conv2d_winograd_output"),
        }
    }
}

/// The product of `dims`, or usize::MAX when it overflows (then no u32 check passes).
fn checked_product(dims: &[usize]) -> usize {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX)
}

/// The fields every conv kernel's `struct Params` starts with (shaders/conv2d.wgsl,
/// conv2d_gemm*.wgsl): the convolution's geometry.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvShapeParams {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride: [u32; 2],
    pad: [u32; 2],
    dil: [u32; 2],
    cin_per_group: u32,
    cout_per_group: u32,
}

/// Mirrors `struct Params` in shaders/conv2d.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Conv2dParams {
    shape: ConvShapeParams,
    co_blocks_per_group: u32,
    co_blocks: u32,
    x_blocks: u32,
    plane_blocks: u32,
    plane_workgroups: u32,
    epilogue: u32,
    subgroups_per_plane: u32,
}

/// Output channels and output x positions per invocation of conv2d, invocations per workgroup.
const BLOCK_CO: usize = 4;
const BLOCK_X: usize = 8;
const WORKGROUP: usize = 64;

#[path = "conv2d_gemm.rs"]
mod gemm;
pub use gemm::{Conv2dGemmParams, MAX_K};
#[path = "conv2d_window.rs"]
mod window;
pub use window::Conv2dWindowParams;
#[path = "conv2d_phased.rs"]
mod phased;
pub use phased::{Conv2dPhasedParams, PhasesParams};
#[path = "conv2d_resolve.rs"]
mod resolve;
#[path = "conv2d_winograd.rs"]
mod winograd;
pub use winograd::{WinogradParams, WinogradSizes};

/// Sizes checked against each other: [n, c_in, h, w], [c_out, kh, kw], [oh, ow].
struct Geometry {
    x: [usize; 4],
    k: [usize; 3],
    out: [usize; 2],
}

impl Default for Conv2d {
    fn default() -> Self {
        Conv2d::new()
    }
}

impl Conv2d {
    /// Stride 1, no padding, dilation 1, one group, no epilogue.
    pub fn new() -> Conv2d {
        Conv2d {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            epilogue: Epilogue::NONE,
            kernel: ConvKernel::Auto,
        }
    }

    /// With stride `[y, x]`.
    pub fn stride(mut self, stride: [usize; 2]) -> Conv2d {
        self.stride = stride;
        self
    }

    /// With zero padding `[y, x]` on each side.
    pub fn padding(mut self, padding: [usize; 2]) -> Conv2d {
        self.padding = padding;
        self
    }

    /// With dilation `[y, x]`.
    pub fn dilation(mut self, dilation: [usize; 2]) -> Conv2d {
        self.dilation = dilation;
        self
    }

    /// With `groups` channel groups (C_in for depthwise).
    pub fn groups(mut self, groups: usize) -> Conv2d {
        self.groups = groups;
        self
    }

    /// With `epilogue`.
    pub fn epilogue(mut self, epilogue: Epilogue) -> Conv2d {
        self.epilogue = epilogue;
        self
    }

    /// The kernel this conv runs on a device with `profile` for x and weight of these shapes.
    pub(crate) fn resolved_kernel(&self, profile: &DeviceProfile, [x, weight]: &[Shape; 2]) -> Result<ConvKernel> {
        self.resolve(profile, &self.geometry(x, weight)?)
    }

    /// Checks the arguments and x and weight against each other.
    fn geometry(&self, x: &Shape, weight: &Shape) -> Result<Geometry> {
        let name = self.name();
        let (s, p, d, g) = (self.stride, self.padding, self.dilation, self.groups);
        ensure!(s[0] > 0 && s[1] > 0, name, "stride must be positive, got {s:?}");
        ensure!(d[0] > 0 && d[1] > 0, name, "dilation must be positive, got {d:?}");
        ensure!(g > 0, name, "groups must be positive, got 0");
        let [n, c_in, h, w] = x.nchw(name, "x")?;
        let [c_out, cin_g, kh, kw] = weight.nchw(name, "weight")?;
        ensure!(c_in % g == 0, name, "x {x} has {c_in} input channels, not divisible by groups {g}");
        ensure!(c_out % g == 0, name, "weight {weight} has {c_out} output channels, not divisible by groups {g}");
        ensure!(
            cin_g * g == c_in,
            name,
            "weight {weight} expects {cin_g} input channels per group, x {x} has {c_in} with groups {g}"
        );
        let mut out = [0; 2];
        for (axis, (size, k)) in [(h, kh), (w, kw)].into_iter().enumerate() {
            // usize overflow here means an absurd argument: report it like a too-large kernel.
            let padded = p[axis].checked_mul(2).and_then(|pp| pp.checked_add(size));
            let span = (k - 1).checked_mul(d[axis]).and_then(|v| v.checked_add(1));
            match (padded, span) {
                (Some(padded), Some(span)) if span <= padded => out[axis] = (padded - span) / s[axis] + 1,
                _ => {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "weight {weight} with dilation {d:?} spans more than x {x} padded by {p:?}: \
                             the output would be empty"
                        ),
                    ))
                }
            }
        }
        Ok(Geometry { x: [n, c_in, h, w], k: [c_out, kh, kw], out })
    }

    fn output_dims(&self, g: &Geometry) -> [usize; 4] {
        [g.x[0], g.k[0], g.out[0], g.out[1]]
    }

    /// The geometry every conv kernel's Params starts with, after checking that every element index
    /// of x, weight and out, and every padded coordinate, fits the shaders' u32 arithmetic.
    fn shape_params(&self, g: &Geometry) -> Result<ConvShapeParams> {
        let name = self.name();
        let u = |what: &str, v: usize| to_u32(name, what, v);
        let ([n, c_in, h, w], [c_out, kh, kw], [oh, ow]) = (g.x, g.k, g.out);
        u("x element count", checked_product(&[n, c_in, h, w]))?;
        u("weight element count", checked_product(&[c_out, c_in / self.groups, kh, kw]))?;
        u("output element count", checked_product(&[n, c_out, oh, ow]))?;
        u("padded height", checked_product(&[2, self.padding[0]]).saturating_add(h))?;
        u("padded width", checked_product(&[2, self.padding[1]]).saturating_add(w))?;
        Ok(ConvShapeParams {
            n: u("batch", n)?,
            c_in: u("input channels", c_in)?,
            h: u("height", h)?,
            w: u("width", w)?,
            c_out: u("output channels", c_out)?,
            oh: u("output height", oh)?,
            ow: u("output width", ow)?,
            kh: u("kernel height", kh)?,
            kw: u("kernel width", kw)?,
            stride: [u("stride", self.stride[0])?, u("stride", self.stride[1])?],
            pad: [u("padding", self.padding[0])?, u("padding", self.padding[1])?],
            dil: [u("dilation", self.dilation[0])?, u("dilation", self.dilation[1])?],
            cin_per_group: u("input channels per group", c_in / self.groups)?,
            cout_per_group: u("output channels per group", c_out / self.groups)?,
        })
    }

    /// The shader's parameters, with every index range checked against u32, and the workgroup count,
    /// for `block_co` output channels per invocation.
    fn params(&self, g: &Geometry, block_co: usize) -> Result<(Conv2dParams, u64)> {
        let name = self.name();
        let u = |what: &str, v: usize| to_u32(name, what, v);
        let ([n, _, _, w], [c_out, _, _], [oh, ow]) = (g.x, g.k, g.out);
        let cout_g = c_out / self.groups;
        let shape = self.shape_params(g)?;
        // Padded coordinates may also reach BLOCK_X - 1 strides past the right edge in a partial block.
        // A block's last column reaches BLOCK_X - 1 strides past its first: a huge stride is named as such.
        let reach = checked_product(&[BLOCK_X - 1, self.stride[1]]);
        u(&format!("stride {} (a block of {BLOCK_X} columns spans {reach})", self.stride[1]), reach)?;
        u(
            "padded width plus a block's span",
            checked_product(&[2, self.padding[1]]).saturating_add(w).saturating_add(reach),
        )?;
        let co_blocks_per_group = cout_g.div_ceil(block_co);
        let x_blocks = ow.div_ceil(BLOCK_X);
        let plane_blocks = oh * x_blocks;
        let plane_workgroups = plane_blocks.div_ceil(WORKGROUP);
        u("output row blocks", plane_workgroups * WORKGROUP)?;
        let co_blocks = self.groups * co_blocks_per_group;
        // At 14x14 a plane is 28 blocks: one workgroup per channel block would leave 36 of its 64
        // lanes idle (57 of 64 at 7x7), so a workgroup packs 8 / S channel blocks, each on S groups of
        // 8 lanes. Measured on lavapipe with `glimpse bench
        // --suite blocks --batch 1 --seed 1 --filter 1024x14x14`, before and after: timm.SelectiveKernel
        // 783 -> 378 ms, BasicBlock 1326 -> 718 ms.
        let subgroups_per_plane = plane_blocks.div_ceil(8).min(8);
        let co_workgroups = co_blocks.div_ceil(8 / subgroups_per_plane);
        let workgroups = (n as u64) * (co_workgroups as u64) * (plane_workgroups as u64);
        let params = Conv2dParams {
            shape,
            co_blocks_per_group: u("channel blocks", co_blocks_per_group)?,
            co_blocks: u("channel blocks", co_blocks)?,
            x_blocks: u("x blocks", x_blocks)?,
            plane_blocks: u("blocks per plane", plane_blocks)?,
            plane_workgroups: u("workgroups per plane", plane_workgroups)?,
            epilogue: self.epilogue.code(),
            subgroups_per_plane: u("subgroups per plane", subgroups_per_plane)?,
        };
        Ok((params, workgroups))
    }
}

impl Op for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn input_names(&self) -> Vec<&'static str> {
        let mut names = vec!["x", "weight"];
        names.extend(self.epilogue.input_names());
        names
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let g = self.geometry(inputs[0], inputs[1])?;
        let out = Shape::new(&self.output_dims(&g))?;
        let mut rest = inputs[2..].iter();
        if self.epilogue.affine {
            let a = rest.next().expect("expect_inputs counted the affine input");
            ensure!(a.dims() == [2, g.k[0]], self.name(), "affine must be [2 x {}] (scale, shift), got {a}", g.k[0]);
        }
        if self.epilogue.residual {
            let r = rest.next().expect("expect_inputs counted the residual input");
            ensure!(*r == &out, self.name(), "residual must match the output {out}, got {r}");
        }
        Ok(out)
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let g = self.geometry(inputs[0].shape(), inputs[1].shape())?;
        let ([_, c_in, h, w], [c_out, kh, kw], [oh, ow]) = (g.x, g.k, g.out);
        let (x, wt) = (inputs[0].data(), inputs[1].data());
        let (cin_g, cout_g) = (c_in / self.groups, c_out / self.groups);
        let affine = self.epilogue.affine.then(|| inputs[2]);
        let residual = self.epilogue.residual.then(|| inputs[inputs.len() - 1].data());
        let [sy, sx] = self.stride.map(|v| v as isize);
        let [py, px] = self.padding.map(|v| v as isize);
        let [dy, dx] = self.dilation.map(|v| v as isize);
        let mut out = Tensor::zeros(shape);
        for (i, y) in out.data_mut().iter_mut().enumerate() {
            let (ox, oy, co, n) = (i % ow, i / ow % oh, i / (ow * oh) % c_out, i / (ow * oh * c_out));
            let group = co / cout_g;
            let mut acc = 0.0f64;
            for ci in 0..cin_g {
                for ky in 0..kh {
                    let iy = oy as isize * sy - py + ky as isize * dy;
                    for kx in 0..kw {
                        let ix = ox as isize * sx - px + kx as isize * dx;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue; // zero padding
                        }
                        let xi = ((n * c_in + group * cin_g + ci) * h + iy as usize) * w + ix as usize;
                        acc += x[xi] as f64 * wt[((co * cin_g + ci) * kh + ky) * kw + kx] as f64;
                    }
                }
            }
            *y = self.epilogue.apply(acc, co, c_out, affine, residual.map_or(0.0, |r| r[i])) as f32;
        }
        Ok(out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let g = self.geometry(inputs[0].shape(), inputs[1].shape())?;
        let kernel = self.resolve(gpu.profile(), &g)?;
        // Unused affine and residual bindings are bound to x: the shader never reads them.
        let (x, weight) = (inputs[0], inputs[1]);
        let affine = if self.epilogue.affine { inputs[2] } else { x };
        let residual = if self.epilogue.residual { inputs[inputs.len() - 1] } else { x };
        let bindings = [x, weight, affine, residual, output];
        let dispatch = match kernel {
            ConvKernel::PhasedSubgroup => return phased::encode_phased(self, gpu, &g, bindings),
            ConvKernel::WindowSubsampled => return phased::encode_subsampled(self, gpu, &g, bindings),
            ConvKernel::Winograd | ConvKernel::WinogradStride2 => return winograd::encode(self, gpu, &g, bindings),
            ConvKernel::Gemm | ConvKernel::GemmSubgroup => {
                // The portable kernel lays its invocations out as 8-lane groups.
                let width = match kernel {
                    ConvKernel::GemmSubgroup => gpu.profile().subgroup_width.expect("resolve checked the width"),
                    _ => 8,
                };
                let (params, workgroups) = gemm::params(self, &g, width as usize)?;
                let grid = gpu.grid_1d(self.name(), workgroups)?;
                let subgroups = (kernel == ConvKernel::GemmSubgroup).then_some(width);
                let constants =
                    gemm::constants(&g, g.x[1] / self.groups, self.stride[1], subgroups, self.epilogue.code());
                // conv2d_gemm reads the weights again as binding 6, as vec4s where K allows;
                // conv2d_gemm_subgroup reads them as vec4s only.
                let portable = [x, weight, affine, residual, output, weight];
                let bindings = if subgroups.is_some() { &portable[..5] } else { &portable[..] };
                gpu.prepare(&kernel.kernel(), &constants, &params, bindings, grid)?
            }
            ConvKernel::RepackSubgroup => {
                let conv = super::matmul::repack::Repacked {
                    epilogue: self.epilogue,
                    kernel: [g.k[1], g.k[2]],
                    stride: self.stride,
                    padding: self.padding,
                    dilation: self.dilation,
                    out: g.out,
                };
                let affine = self.epilogue.affine.then_some(affine);
                let residual = self.epilogue.residual.then_some(residual);
                return conv.encode(gpu, self.name(), x, weight, affine, residual, output);
            }
            ConvKernel::WindowSubgroup => window::dispatch(self, gpu, &g, bindings)?,
            _ => {
                let (params, workgroups) = self.params(&g, BLOCK_CO)?;
                let grid = gpu.grid_1d(self.name(), workgroups)?;
                gpu.prepare(&kernel.kernel(), &[], &params, &bindings, grid)?
            }
        };
        Ok(vec![dispatch])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let out = self.output_shape(inputs).map_or(0, |s| s.numel()) as u64;
        let [_, cin_g, kh, kw] = inputs[1].nchw(self.name(), "weight").unwrap_or([0; 4]).map(|v| v as u64);
        let e = self.epilogue;
        let epilogue_flops = 2 * e.affine as u64 + e.residual as u64 + (e.activation != Activation::None) as u64;
        let read: u64 = inputs.iter().map(|s| s.bytes()).sum();
        Cost { flops: out * (2 * cin_g * kh * kw + epilogue_flops), bytes: read + 4 * out }
    }

    /// `conv2d ` and [`Conv2d::label`].
    fn describe(&self, inputs: &[&Shape]) -> String {
        format!("conv2d {}", self.label(inputs[0].dims(), inputs[1].dims()))
    }
}

impl Conv2d {
    /// The conv at x and weight shapes `x` and `weight` as reports name it (the convs suite's rows,
    /// where a network's time went): `NxCxHxW>Cout KHxKW/stride`, with ` g<groups>` and
    /// ` d<dilation>` where not 1.
    pub fn label(&self, x: &[usize], weight: &[usize]) -> String {
        let (co, kh, kw) = match *weight {
            [co, _, kh, kw] => (co, kh, kw),
            _ => return format!("{}>{}", super::dims_text(x), super::dims_text(weight)),
        };
        let mut s = format!("{}>{co} {kh}x{kw}/{}", super::dims_text(x), self.stride[0]);
        if self.groups > 1 {
            s += &format!(" g{}", self.groups);
        }
        if self.dilation != [1, 1] {
            s += &format!(" d{}", self.dilation[0]);
        }
        s
    }
}

#[path = "conv2d_cases.rs"]
mod cases;
pub use cases::{cases, repacked_cases};

#[cfg(test)]
#[path = "conv2d_tests.rs"]
mod tests;
