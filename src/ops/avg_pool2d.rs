//! avg_pool2d: 2-D average pooling with zero padding, as PyTorch's
//! `nn.AvgPool2d` (divisor_override=None), ceil_mode and count_include_pad included.
//!
//! The shape and divisor rules are PyTorch's: `pooling_output_shape_pad_lr` in
//! aten/src/ATen/native/Pool.h and `cpu_avg_pool` in
//! aten/src/ATen/native/cpu/AvgPoolKernel.cpp.

use super::max_pool2d::covered;
use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Error, Result, Shape, Tensor};

/// Average pooling over `kernel` windows moved by `stride`, with `padding` rows
/// and columns of zeros on each side: x [N, C, H, W] -> [N, C, OH, OW].
/// OH = (H + 2 * padding - kernel) / stride + 1, rounded down, or up with
/// `ceil_mode` as long as the last window starts inside the input or the top
/// padding (likewise OW). All pairs are (height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window size; each at least 1.
    pub kernel: [usize; 2],
    /// Step between windows; each at least 1.
    pub stride: [usize; 2],
    /// Zero rows / columns added on each side; at most half the kernel, as PyTorch requires.
    pub padding: [usize; 2],
    /// Round the output size up: a last, partial window may hang over the far edge.
    pub ceil_mode: bool,
    /// Divide by the window clipped to the padded input (padding counts, the
    /// ceil_mode overhang does not) instead of by the real elements it holds.
    pub count_include_pad: bool,
}

/// Mirrors `struct Params` in shaders/avg_pool2d.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AvgPool2dParams {
    n: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    count_include_pad: u32,
}

const WORKGROUP: u64 = 256;

/// PyTorch's output length along one axis (pooling_output_shape_pad_lr with
/// dilation 1), or None when it would be empty. Integers only: `size` is at least 1.
fn output_len(size: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Option<usize> {
    let (size, kernel, stride, pad) = (size as u128, kernel as u128, stride as u128, pad as u128);
    let span = size + 2 * pad + if ceil { stride - 1 } else { 0 };
    // PyTorch divides rounding towards -inf, so a negative numerator gives no output.
    let mut out = span.checked_sub(kernel)? / stride + 1;
    // ceil_mode: the last window must start inside the input or the top padding.
    if ceil && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    (out > 0).then(|| usize::try_from(out).ok()).flatten()
}

/// One window along one axis, as cpu_avg_pool forms it: the real elements it
/// covers [lo, hi) and its length clipped to the padded input (`pool`, the
/// count_include_pad divisor; a ceil_mode overhang past the padding is not counted).
/// The output-size rule makes [lo, hi) non-empty: every window starts before
/// size + pad and, as pad <= kernel / 2, ends after pad.
fn window(o: usize, size: usize, kernel: usize, stride: usize, pad: usize) -> (usize, usize, usize) {
    // Padded coordinates, so that nothing goes negative.
    let start = o * stride;
    let end = (start + kernel).min(size + 2 * pad);
    (start.max(pad) - pad, end.min(size + pad) - pad, end - start)
}

impl AvgPool2d {
    /// PyTorch's `AvgPool2d(kernel)`: stride = kernel, no padding, floor rule,
    /// count_include_pad=True.
    pub fn new(kernel: [usize; 2]) -> AvgPool2d {
        AvgPool2d { kernel, stride: kernel, padding: [0, 0], ceil_mode: false, count_include_pad: true }
    }

    /// The same pooling with an explicit stride.
    pub fn with_stride(self, stride: [usize; 2]) -> AvgPool2d {
        AvgPool2d { stride, ..self }
    }

    /// The same pooling with zero padding on each side.
    pub fn with_padding(self, padding: [usize; 2]) -> AvgPool2d {
        AvgPool2d { padding, ..self }
    }

    /// The same pooling with the ceil (true) or floor (false) output rule.
    pub fn with_ceil_mode(self, ceil_mode: bool) -> AvgPool2d {
        AvgPool2d { ceil_mode, ..self }
    }

    /// The same pooling dividing by the padded window (true) or by the real elements (false).
    pub fn with_count_include_pad(self, count_include_pad: bool) -> AvgPool2d {
        AvgPool2d { count_include_pad, ..self }
    }

    /// Validates the arguments against x's shape and returns the shader
    /// parameters (every index the shader forms checked to fit in u32).
    fn params(&self, x: &Shape) -> Result<AvgPool2dParams> {
        let op = self.name();
        let [n, c, h, w] = x.nchw(op, "x")?;
        let ([kh, kw], [sh, sw], [ph, pw]) = (self.kernel, self.stride, self.padding);
        ensure!(kh > 0 && kw > 0, op, "kernel size should be greater than zero, got {kh} x {kw}");
        ensure!(sh > 0 && sw > 0, op, "stride should be greater than zero, got {sh} x {sw}");
        ensure!(
            ph <= kh / 2 && pw <= kw / 2,
            op,
            "padding should be at most half of the kernel size, got padding {ph} x {pw} with kernel {kh} x {kw}"
        );
        // The shader's largest index along an axis is below size + 2 * pad + kernel.
        let fits = |size: usize, pad: usize, k: usize| {
            size.checked_add(2 * pad).and_then(|s| s.checked_add(k)).is_some_and(|s| u32::try_from(s).is_ok())
        };
        ensure!(
            fits(h, ph, kh) && fits(w, pw, kw),
            op,
            "padded input of x {x} with kernel {kh} x {kw} exceeds the 32-bit index range"
        );
        let (Some(oh), Some(ow)) =
            (output_len(h, kh, sh, ph, self.ceil_mode), output_len(w, kw, sw, pw, self.ceil_mode))
        else {
            return Err(Error::invalid(
                op,
                format!(
                    "kernel {kh} x {kw} does not fit the padded input {} x {} (x {x}, padding {ph} x {pw}, \
                     stride {sh} x {sw}, ceil_mode {}): the output would be empty",
                    h + 2 * ph,
                    w + 2 * pw,
                    self.ceil_mode
                ),
            ));
        };
        to_u32(op, "input element count", x.numel())?;
        let outputs = [n, c, oh, ow].iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX);
        let u = |what: &str, v: usize| to_u32(op, what, v);
        Ok(AvgPool2dParams {
            n: u("output element count", outputs)?,
            h: u("height", h)?,
            w: u("width", w)?,
            oh: u("output height", oh)?,
            ow: u("output width", ow)?,
            kh: u("kernel height", kh)?,
            kw: u("kernel width", kw)?,
            sh: u("stride along y", sh)?,
            sw: u("stride along x", sw)?,
            ph: u("padding along y", ph)?,
            pw: u("padding along x", pw)?,
            count_include_pad: self.count_include_pad as u32,
        })
    }
}

impl Op for AvgPool2d {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let p = self.params(inputs[0])?;
        let [n, c, _, _] = inputs[0].nchw(self.name(), "x")?;
        Shape::new(&[n, c, p.oh as usize, p.ow as usize])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [n, c, h, w] = inputs[0].shape().nchw(self.name(), "x")?;
        let (oh, ow) = (shape.dims()[2], shape.dims()[3]);
        let ([kh, kw], [sh, sw], [ph, pw]) = (self.kernel, self.stride, self.padding);
        let mut out = Vec::with_capacity(shape.numel());
        for plane in inputs[0].data().chunks(h * w).take(n * c) {
            for oy in 0..oh {
                let (y0, y1, pool_h) = window(oy, h, kh, sh, ph);
                for ox in 0..ow {
                    let (x0, x1, pool_w) = window(ox, w, kw, sw, pw);
                    let sum: f64 = (y0..y1).flat_map(|y| &plane[y * w + x0..y * w + x1]).map(|&v| v as f64).sum();
                    let divisor = if self.count_include_pad { pool_h * pool_w } else { (y1 - y0) * (x1 - x0) };
                    out.push((sum / divisor as f64) as f32);
                }
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let params = self.params(inputs[0].shape())?;
        let grid = gpu.grid_1d(self.name(), (params.n as u64).div_ceil(WORKGROUP))?;
        Ok(vec![gpu.prepare(&kernel!("avg_pool2d"), &[], &params, &[inputs[0], output], grid)?])
    }

    /// One add per window position (padding included) plus one division per
    /// output; bytes: the input elements some window covers, read once, and the
    /// output written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let (Ok(p), Ok([n, c, h, w])) = (self.params(inputs[0]), inputs[0].nchw(self.name(), "x")) else {
            return Cost::default();
        };
        let outputs = p.n as u64;
        let rows = covered(h, self.kernel[0], self.stride[0], self.padding[0], p.oh as usize);
        let cols = covered(w, self.kernel[1], self.stride[1], self.padding[1], p.ow as usize);
        let read = (n * c * rows * cols) as u64;
        Cost { flops: outputs * (self.kernel[0] * self.kernel[1] + 1) as u64, bytes: 4 * (read + outputs) }
    }
}

/// Correctness cases: every combination of kernel 2 / 3, stride 1 / 2 / 3,
/// padding 0 / 1, ceil_mode and count_include_pad over odd sizes (5 x 5,
/// 7 x 3, 1 x 9, batch 3), timm's ResNet-D downsample (k2 s2, ceil,
/// count_include_pad=False) on odd maps, a non-square window and a grid that folds.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let shapes = [[1, 1, 5, 5], [1, 2, 7, 3], [2, 3, 1, 9], [3, 2, 6, 5]];
    for k in [2, 3] {
        for s in [1, 2, 3] {
            for p in [0, 1] {
                for (ceil, count_pad) in [(false, true), (false, false), (true, true), (true, false)] {
                    let pool = AvgPool2d::new([k, k])
                        .with_stride([s, s])
                        .with_padding([p, p])
                        .with_ceil_mode(ceil)
                        .with_count_include_pad(count_pad);
                    let label = format!("k{k} s{s} p{p} ceil_mode={ceil} count_include_pad={count_pad}");
                    for dims in shapes {
                        // A 1-row map leaves some windows (k2 p0 floor) no output at all.
                        if pool.output_shape(&[&Shape::new(&dims).expect("case shapes are valid")]).is_ok() {
                            cases.push(Case::new(label.clone(), pool, vec![random_input(rng, &dims, -1.0, 1.0)]));
                        }
                    }
                }
            }
        }
    }
    let timm = AvgPool2d::new([2, 2]).with_ceil_mode(true).with_count_include_pad(false);
    for dims in [[1, 1, 5, 5], [2, 4, 7, 7], [1, 3, 3, 3], [1, 1, 1, 1], [1, 64, 56, 56], [1, 32, 29, 29]] {
        cases.push(Case::new(
            "timm ResNet-D: k2 s2 ceil, no pad count",
            timm,
            vec![random_input(rng, &dims, -1.0, 1.0)],
        ));
    }
    let odd = AvgPool2d::new([2, 3]).with_stride([2, 1]).with_padding([1, 1]).with_ceil_mode(true);
    cases.push(Case::new("k2x3 s2x1 p1 ceil", odd, vec![random_input(rng, &[2, 3, 13, 17], -1.0, 1.0)]));
    // 65^2 outputs need 17 workgroups of 256: past SMALL_GRID the grid folds into y.
    let folded = AvgPool2d::new([2, 2]).with_stride([1, 1]).with_padding([1, 1]).with_count_include_pad(false);
    let x = random_input(rng, &[1, 1, 64, 64], -1.0, 1.0);
    cases.push(Case::new("folded grid, k2 s1 p1", folded, vec![x]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(pool: AvgPool2d, x: &[usize]) -> Vec<usize> {
        pool.output_shape(&[&Shape::new(x).unwrap()]).unwrap().dims().to_vec()
    }

    fn err(pool: AvgPool2d, x: &[usize]) -> String {
        pool.output_shape(&[&Shape::new(x).unwrap()]).unwrap_err().to_string()
    }

    fn one_to(n: usize, x: &[usize]) -> Tensor {
        Tensor::from_vec(x, (1..=n).map(|v| v as f32).collect()).unwrap()
    }

    #[test]
    fn output_follows_pytorch_floor_and_ceil_rules() {
        let k2 = AvgPool2d::new([2, 2]);
        assert_eq!(dims(k2, &[2, 3, 5, 5]), [2, 3, 2, 2]);
        assert_eq!(dims(k2.with_ceil_mode(true), &[2, 3, 5, 5]), [2, 3, 3, 3]);
        assert_eq!(dims(k2.with_ceil_mode(true), &[1, 1, 1, 1]), [1, 1, 1, 1]);
        // k3 s3 p1 on 5: ceil gives 3, but the third window would start at
        // padded 6 >= 5 + 1, entirely in the bottom padding: PyTorch drops it.
        let k3 = AvgPool2d::new([3, 3]).with_padding([1, 1]).with_ceil_mode(true);
        assert_eq!(dims(k3, &[1, 1, 5, 6]), [1, 1, 2, 3]);
        let e = err(k2, &[1, 1, 1, 9]);
        assert!(
            e.contains("avg_pool2d") && e.contains("output would be empty") && e.contains("[1 x 1 x 1 x 9]"),
            "{e}"
        );
    }

    #[test]
    fn bad_arguments_are_rejected() {
        let e = err(AvgPool2d::new([2, 2]), &[3, 7, 7]);
        assert!(e.contains("avg_pool2d") && e.contains("N x C x H x W") && e.contains("[3 x 7 x 7]"), "{e}");
        assert!(err(AvgPool2d::new([0, 2]), &[1, 1, 7, 7]).contains("kernel size should be greater than zero"));
        assert!(err(AvgPool2d::new([2, 2]).with_stride([1, 0]), &[1, 1, 7, 7]).contains("stride should be greater"));
        let e = err(AvgPool2d::new([3, 3]).with_padding([2, 1]), &[1, 1, 7, 7]);
        assert!(e.contains("at most half") && e.contains("padding 2 x 1") && e.contains("kernel 3 x 3"), "{e}");
        let e = err(AvgPool2d::new([usize::MAX, 2]), &[1, 1, 7, 7]);
        assert!(e.contains("32-bit") && e.contains("[1 x 1 x 7 x 7]"), "{e}");
        let e = err(AvgPool2d::new([1, 1]).with_stride([1 << 33, 1]).with_ceil_mode(true), &[1, 1, 7, 7]);
        assert!(e.contains("stride along y") && e.contains("32-bit"), "{e}");
        let e = err(AvgPool2d::new([1, 1]), &[1, 1, 70_000, 70_000]);
        assert!(e.contains("input element count") && e.contains("32-bit"), "{e}");
        let x = Tensor::zeros(Shape::new(&[1, 1, 2, 2]).unwrap());
        let e = AvgPool2d::new([2, 2]).reference(&[&x, &x]).unwrap_err().to_string();
        assert!(e.contains("expects 1 inputs (x), got 2"), "{e}");
    }

    #[test]
    fn ceil_mode_divides_a_partial_window_by_its_real_elements() {
        // 1 2 3 / 4 5 6 / 7 8 9, k2 s2 ceil: the last row and column get windows
        // of 2, 2 and 1 real elements. With no padding count_include_pad changes
        // nothing: PyTorch clips its divisor at H + padding too.
        let x = one_to(9, &[1, 1, 3, 3]);
        for count_pad in [false, true] {
            let pool = AvgPool2d::new([2, 2]).with_ceil_mode(true).with_count_include_pad(count_pad);
            let y = pool.reference(&[&x]).unwrap();
            assert_eq!(y.shape().dims(), [1, 1, 2, 2]);
            assert_eq!(y.data(), &[3.0, 4.5, 7.5, 9.0]);
        }
    }

    #[test]
    fn count_include_pad_counts_padding_but_not_the_ceil_overhang() {
        // Same map, k2 s2 p1: every window holds padding. Real sums 1, 2+3, 4+7, 5+6+8+9.
        let x = one_to(9, &[1, 1, 3, 3]);
        let pool = AvgPool2d::new([2, 2]).with_padding([1, 1]);
        assert_eq!(pool.reference(&[&x]).unwrap().data(), &[0.25, 1.25, 2.75, 7.0]);
        let y = pool.with_count_include_pad(false).reference(&[&x]).unwrap();
        assert_eq!(y.data(), &[1.0, 2.5, 5.5, 7.0]);
        // Row 1 2 3 4, kernel 3 stride 2 padding 1, ceil: windows over padded
        // columns [0, 3), [2, 5), [4, 7). The last is clipped to the padded
        // input [4, 6): count_include_pad divides 4 by 2, not by 3.
        let x = one_to(4, &[1, 1, 1, 4]);
        let pool = AvgPool2d::new([1, 3]).with_stride([1, 2]).with_padding([0, 1]).with_ceil_mode(true);
        assert_eq!(pool.reference(&[&x]).unwrap().data(), &[1.0, 3.0, 2.0]);
        assert_eq!(pool.with_count_include_pad(false).reference(&[&x]).unwrap().data(), &[1.5, 3.0, 4.0]);
    }

    #[test]
    fn cost_counts_each_covered_input_once() {
        // 5 x 5, k2 s2 ceil: every element is covered; 9 outputs of 4 adds + 1 division.
        let x = Shape::new(&[1, 2, 5, 5]).unwrap();
        let c = AvgPool2d::new([2, 2]).with_ceil_mode(true).cost(&[&x]);
        assert_eq!(c, Cost { flops: 2 * 9 * 5, bytes: 4 * (2 * 25 + 2 * 9) });
    }
}
