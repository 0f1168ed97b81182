//! max_pool2d: 2-D max pooling with -inf padding, as PyTorch's `nn.MaxPool2d`
//! (dilation 1, ceil_mode=False).

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Error, Result, Shape, Tensor};

/// Max pooling over `kernel` windows moved by `stride`, with `padding` rows and
/// columns of -inf on each side: x [N, C, H, W] -> [N, C, OH, OW] with PyTorch's
/// floor rule OH = (H + 2 * padding - kernel) / stride + 1 (likewise OW).
/// All pairs are (height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Window size; each at least 1 and at most the padded input.
    pub kernel: [usize; 2],
    /// Step between windows; each at least 1.
    pub stride: [usize; 2],
    /// -inf rows / columns added on each side; at most half the kernel, as PyTorch
    /// requires, so every window holds at least one real element.
    pub padding: [usize; 2],
}

/// Mirrors `struct Params` in shaders/max_pool2d.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MaxPool2dParams {
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
    _pad: u32,
}

const WORKGROUP: u64 = 256;

impl MaxPool2d {
    /// PyTorch's `MaxPool2d(kernel, padding=padding)`: the stride defaults to the kernel.
    pub fn new(kernel: [usize; 2], padding: [usize; 2]) -> MaxPool2d {
        MaxPool2d { kernel, stride: kernel, padding }
    }

    /// The same pooling with an explicit stride.
    pub fn with_stride(self, stride: [usize; 2]) -> MaxPool2d {
        MaxPool2d { stride, ..self }
    }

    /// Validates the arguments against x's shape and returns the shader
    /// parameters (every size checked to fit the shaders' u32 indices).
    fn params(&self, x: &Shape) -> Result<MaxPool2dParams> {
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
        // padding <= kernel / 2 bounds it, so only a huge kernel can overflow here.
        let padded = |size: usize, pad: usize| size.checked_add(2 * pad).filter(|&s| u32::try_from(s).is_ok());
        let (Some(hp), Some(wp)) = (padded(h, ph), padded(w, pw)) else {
            return Err(Error::invalid(op, format!("padded input of x {x} exceeds the 32-bit index range")));
        };
        ensure!(
            kh <= hp && kw <= wp,
            op,
            "kernel {kh} x {kw} is larger than the padded input {hp} x {wp} (x {x}, padding {ph} x {pw}): \
             the output would be empty"
        );
        let (oh, ow) = ((hp - kh) / sh + 1, (wp - kw) / sw + 1);
        to_u32(op, "input element count", x.numel())?;
        let outputs = [n, c, oh, ow].iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX);
        let u = |what: &str, v: usize| to_u32(op, what, v);
        Ok(MaxPool2dParams {
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
            _pad: 0,
        })
    }
}

/// How many input rows (or columns) some window covers (`outputs` windows, any
/// rounding rule; avg_pool2d shares it): a pooling with a stride
/// larger than its kernel never needs to read the others.
pub(super) fn covered(size: usize, kernel: usize, stride: usize, pad: usize, outputs: usize) -> usize {
    // Of the windows starting at or before padded position q, the last one ends last.
    let last_start = |q: usize| (q / stride).min(outputs - 1) * stride;
    (0..size).filter(|&i| i + pad < last_start(i + pad) + kernel).count()
}

impl Op for MaxPool2d {
    fn name(&self) -> &'static str {
        "max_pool2d"
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
        let x = inputs[0].data();
        let mut out = Vec::with_capacity(shape.numel());
        for plane in x.chunks(h * w).take(n * c) {
            for oy in 0..oh {
                for ox in 0..ow {
                    // Padded coordinates; positions outside the input are -inf.
                    let mut m = f32::NEG_INFINITY;
                    for ky in 0..self.kernel[0] {
                        for kx in 0..self.kernel[1] {
                            let y = (oy * self.stride[0] + ky).checked_sub(self.padding[0]).filter(|&y| y < h);
                            let xx = (ox * self.stride[1] + kx).checked_sub(self.padding[1]).filter(|&v| v < w);
                            if let (Some(y), Some(xx)) = (y, xx) {
                                m = m.max(plane[y * w + xx]);
                            }
                        }
                    }
                    out.push(m);
                }
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let params = self.params(inputs[0].shape())?;
        let (kernel, per_invocation) =
            if super::choose::stem_pool_in_vec4s(self.kernel, self.stride, self.padding, params.w as usize) {
                (kernel!("max_pool2d_s2_vec4"), 4)
            } else {
                (kernel!("max_pool2d"), 1)
            };
        let grid = gpu.grid_1d(self.name(), (params.n as u64 / per_invocation).div_ceil(WORKGROUP))?;
        Ok(vec![gpu.prepare(&kernel, &[], &params, &[inputs[0], output], grid)?])
    }

    /// One comparison per window position (padding included) per output; bytes:
    /// the input elements some window covers, read once, and the output written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let (Ok(p), Ok([n, c, h, w])) = (self.params(inputs[0]), inputs[0].nchw(self.name(), "x")) else {
            return Cost::default();
        };
        let outputs = p.n as u64;
        let rows = covered(h, self.kernel[0], self.stride[0], self.padding[0], p.oh as usize);
        let cols = covered(w, self.kernel[1], self.stride[1], self.padding[1], p.ow as usize);
        let read = (n * c * rows * cols) as u64;
        Cost { flops: outputs * (self.kernel[0] * self.kernel[1]) as u64, bytes: 4 * (read + outputs) }
    }
}

/// Correctness cases: kernels 2 and 3, strides 1 and 2, padding 0 and 1, odd
/// sizes, 1 x 1 inputs (padding only possible there with kernel 2 or 3), and a
/// stride larger than the kernel.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let pools = [
        ("k2", MaxPool2d::new([2, 2], [0, 0])),
        ("k3 s2 p1", MaxPool2d::new([3, 3], [1, 1]).with_stride([2, 2])),
        ("k3 s1 p1", MaxPool2d::new([3, 3], [1, 1]).with_stride([1, 1])),
        ("k2 s1 p1", MaxPool2d::new([2, 2], [1, 1]).with_stride([1, 1])),
        ("k2x3 s2x1 p1x0", MaxPool2d::new([2, 3], [1, 0]).with_stride([2, 1])),
        ("k2 s3 (gaps)", MaxPool2d::new([2, 2], [0, 0]).with_stride([3, 3])),
    ];
    // Widths a multiple of 8 run "k3 s2 p1" on max_pool2d_s2_vec4 (odd and even heights, one quad
    // per row at 2 x 8), the others on max_pool2d.
    let shapes = [[1, 1, 7, 7], [3, 3, 13, 17], [1, 65, 56, 56], [3, 1, 56, 56], [2, 3, 7, 16], [1, 2, 2, 8]];
    for (label, pool) in pools {
        for dims in shapes {
            let x = random_input(rng, &dims, -1.0, 1.0);
            cases.push(Case::new(label, pool, vec![x]));
        }
    }
    // A 1 x 1 input: a k3 p1 window is all padding but the one element.
    let x = random_input(rng, &[3, 3, 1, 1], -1.0, 1.0);
    cases.push(Case::new("1 x 1, k3 s1 p1", MaxPool2d::new([3, 3], [1, 1]).with_stride([1, 1]), vec![x]));
    // 2 x 68 x 32 quads of the stem's pool (17 workgroups of 256, past SMALL_GRID): the vec4
    // kernel's grid folds too.
    let x = random_input(rng, &[1, 2, 136, 256], -1.0, 1.0);
    let stem = MaxPool2d::new([3, 3], [1, 1]).with_stride([2, 2]);
    cases.push(Case::new("folded grid, k3 s2 p1", stem, vec![x]).with_grid_limit(SMALL_GRID));
    // 65^2 outputs need 17 workgroups of 256: past SMALL_GRID the grid folds into y.
    let x = random_input(rng, &[1, 1, 64, 64], -1.0, 1.0);
    let folded = MaxPool2d::new([2, 2], [1, 1]).with_stride([1, 1]);
    cases.push(Case::new("folded grid, k2 s1 p1", folded, vec![x]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(pool: MaxPool2d, dims: &[usize]) -> String {
        pool.output_shape(&[&Shape::new(dims).unwrap()]).unwrap_err().to_string()
    }

    #[test]
    fn output_follows_the_floor_rule() {
        let x = Shape::new(&[2, 3, 13, 17]).unwrap();
        let out = |p: MaxPool2d| p.output_shape(&[&x]).unwrap().dims().to_vec();
        assert_eq!(out(MaxPool2d::new([2, 2], [0, 0])), [2, 3, 6, 8]);
        assert_eq!(out(MaxPool2d::new([3, 3], [1, 1]).with_stride([2, 2])), [2, 3, 7, 9]);
        assert_eq!(out(MaxPool2d::new([3, 3], [1, 1]).with_stride([1, 1])), [2, 3, 13, 17]);
    }

    #[test]
    fn bad_arguments_are_rejected() {
        let ok = MaxPool2d::new([2, 2], [0, 0]);
        let e = err(ok, &[3, 7, 7]);
        assert!(e.contains("max_pool2d") && e.contains("N x C x H x W") && e.contains("[3 x 7 x 7]"), "{e}");
        assert!(err(MaxPool2d::new([0, 2], [0, 0]), &[1, 1, 7, 7]).contains("kernel size should be greater than zero"));
        assert!(err(ok.with_stride([1, 0]), &[1, 1, 7, 7]).contains("stride should be greater than zero"));
        let e = err(MaxPool2d::new([3, 3], [2, 1]), &[1, 1, 7, 7]);
        assert!(e.contains("at most half") && e.contains("padding 2 x 1") && e.contains("kernel 3 x 3"), "{e}");
        let e = err(MaxPool2d::new([5, 2], [1, 0]), &[1, 1, 2, 7]);
        assert!(e.contains("larger than the padded input 4 x 7") && e.contains("[1 x 1 x 2 x 7]"), "{e}");
        let e = err(MaxPool2d::new([usize::MAX, 2], [0, 0]), &[1, 1, 7, 7]);
        assert!(e.contains("larger than the padded input"), "{e}");
        let e = err(ok.with_stride([1 << 33, 1]), &[1, 1, 7, 7]);
        assert!(e.contains("stride along y") && e.contains("32-bit"), "{e}");
        let e = err(MaxPool2d::new([1, 1], [0, 0]), &[1, 1, 70_000, 70_000]);
        assert!(e.contains("input element count") && e.contains("32-bit"), "{e}");
        let x = Tensor::zeros(Shape::new(&[1, 1, 2, 2]).unwrap());
        let e = ok.reference(&[&x, &x]).unwrap_err().to_string();
        assert!(e.contains("expects 1 inputs (x), got 2"), "{e}");
    }

    #[test]
    fn reference_treats_padding_as_minus_infinity() {
        // All-negative input: zero padding would win every border window.
        let x = Tensor::from_vec(&[1, 1, 2, 3], vec![-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]).unwrap();
        let y = MaxPool2d::new([2, 2], [1, 1]).reference(&[&x]).unwrap();
        assert_eq!(y.shape().dims(), [1, 1, 2, 2]);
        assert_eq!(y.data(), &[-1.0, -2.0, -4.0, -5.0]);
    }

    #[test]
    fn cost_skips_rows_no_window_covers() {
        let x = Shape::new(&[1, 2, 7, 7]).unwrap();
        // Stride 3, kernel 2: rows 0,1, 3,4 are covered; 2, 5 and 6 are not.
        let c = MaxPool2d::new([2, 2], [0, 0]).with_stride([3, 3]).cost(&[&x]);
        assert_eq!(c, Cost { flops: 2 * 4 * 4, bytes: 4 * (2 * 16 + 2 * 4) });
    }
}
