//! sk_attention: SKNet's attention MLP and softmax over branches (the
//! `SkAttention` fusion rule): fc, its affine and activation, the per-branch
//! fc, and the softmax over branches, in one small dispatch.

use super::{
    expect_inputs, expect_output, gpu_shapes_of, random_input, shapes_of, to_u32, Activation, Case, Cost, Op,
    SMALL_GRID,
};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Error, Result, Shape, Tensor};

/// Branch weights of a selective-kernel block from its pooled descriptor.
///
/// Inputs: `s` [N, C] (the pooled descriptor), `fc` [D, C] (reduction
/// weights), `fc_affine` [2, D] (row 0 scale, row 1 shift: the tutorial's fc
/// bias with scale 1, or timm's folded attn.bn), `select` [M * C, D]
/// (path-major: row m * C + c is branch m's weights for channel c; the
/// tutorial's fcs.{m}.weight concatenated, or timm's fc_select) and
/// `select_bias` [M * C] (the tutorial's fcs.{m}.bias concatenated, zeros for
/// timm). Output [N, M, C]: a[n, m, c] = softmax over m of
/// (select . z + select_bias)[m * C + c], z = reduce_activation(scale * (fc . s) + shift).
///
/// One dispatch, one workgroup per image (6 storage buffers, within WebGPU's
/// default 8): z [D] lives in workgroup memory between the reduction and the
/// softmax, so D is at most [`MAX_D`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkAttention {
    /// M, the number of branches: 2 to 4.
    pub branches: usize,
    /// Applied to z: `None` for the tutorial's SKConv, `Relu` for timm.
    pub reduce_activation: Activation,
}

/// The largest reduced width D the kernel takes: z fills the portable 16 KiB
/// of workgroup memory (shaders/sk_attention.wgsl's MAX_D), far above any SK
/// block's max(C / 16, 32).
pub const MAX_D: usize = 16 * 1024 / 4;

/// Mirrors `struct Params` in shaders/sk_attention.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SkAttentionParams {
    n: u32,
    c: u32,
    d: u32,
    branches: u32,
    activation: u32,
    _pad: [u32; 3],
}

impl SkAttention {
    /// Validates the branch count and the five shapes; returns the shader parameters.
    fn params(&self, inputs: &[&Shape]) -> Result<SkAttentionParams> {
        let op = self.name();
        let m = self.branches;
        ensure!((2..=4).contains(&m), op, "branches must be 2 to 4, got {m}");
        expect_inputs(self, inputs)?;
        let [s, fc, affine, select, bias] = inputs else { unreachable!("expect_inputs checked the count") };
        let [n, c] = s.dims()[..] else {
            return Err(Error::invalid(op, format!("s must be N x C, got {s}")));
        };
        let &[d, fc_c] = fc.dims() else {
            return Err(Error::invalid(op, format!("fc must be D x C, got {fc}")));
        };
        ensure!(fc_c == c, op, "fc {fc} must have C = {c} columns, the channels of s {s}");
        ensure!(
            d <= MAX_D,
            op,
            "fc {fc} has D = {d} rows; the kernel keeps z in 16 KiB of workgroup memory, at most {MAX_D} values"
        );
        ensure!(affine.dims() == [2, d], op, "fc_affine must be [2 x {d}] (scale, shift) for fc {fc}, got {affine}");
        let mc = m.checked_mul(c).ok_or_else(|| Error::invalid(op, format!("{m} x C overflows for s {s}")))?;
        ensure!(
            select.dims() == [mc, d],
            op,
            "select must be [{mc} x {d}] (M * C x D) for {m} branches, s {s} and fc {fc}, got {select}"
        );
        ensure!(bias.dims() == [mc], op, "select_bias must be [{mc}] (M * C) to match select {select}, got {bias}");
        to_u32(op, "select element count", select.numel())?;
        to_u32(op, "fc element count", fc.numel())?;
        to_u32(op, "output element count", n.saturating_mul(mc))?;
        Ok(SkAttentionParams {
            n: to_u32(op, "N", n)?,
            c: to_u32(op, "C", c)?,
            d: d as u32, // <= MAX_D
            branches: m as u32,
            activation: self.reduce_activation.code(),
            _pad: [0; 3],
        })
    }
}

impl Op for SkAttention {
    fn name(&self) -> &'static str {
        "sk_attention"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["s", "fc", "fc_affine", "select", "select_bias"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        let p = self.params(inputs)?;
        Shape::new(&[p.n as usize, self.branches, p.c as usize])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [n, m, c] = shape.dims()[..] else { unreachable!("the output is N x M x C") };
        let d = inputs[1].shape().dims()[0];
        let [s, fc, affine, select, bias] = [0, 1, 2, 3, 4].map(|i| inputs[i].data());
        let mut out = vec![0.0f32; shape.numel()];
        for i in 0..n {
            let s = &s[i * c..(i + 1) * c];
            let z: Vec<f64> = (0..d)
                .map(|r| {
                    let dot: f64 = fc[r * c..(r + 1) * c].iter().zip(s).map(|(&w, &x)| w as f64 * x as f64).sum();
                    self.reduce_activation.apply(affine[r] as f64 * dot + affine[d + r] as f64)
                })
                .collect();
            for ch in 0..c {
                let logits: Vec<f64> = (0..m)
                    .map(|b| {
                        let row = &select[(b * c + ch) * d..(b * c + ch + 1) * d];
                        row.iter().zip(&z).map(|(&w, &v)| w as f64 * v).sum::<f64>() + bias[b * c + ch] as f64
                    })
                    .collect();
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for (b, e) in exps.iter().enumerate() {
                    out[(i * m + b) * c + ch] = (e / sum) as f32;
                }
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let params = self.params(&gpu_shapes_of(inputs))?;
        // One workgroup per image.
        let grid = gpu.grid_1d(self.name(), params.n as u64)?;
        let mut bindings = inputs.to_vec();
        bindings.push(output);
        Ok(vec![gpu.prepare(&kernel!("sk_attention"), &[], &params, &bindings, grid)?])
    }

    /// Two FLOPs per multiply-add of both matrix products, two for the affine
    /// and one for the activation per z, three per logit (bias, exp, divide);
    /// every input read once, the output written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok(p) = self.params(inputs) else {
            return Cost::default();
        };
        let (n, c, d, m) = (p.n as u64, p.c as u64, p.d as u64, self.branches as u64);
        let flops = n * (2 * d * c + 3 * d + 2 * m * c * d + 3 * m * c);
        let bytes = 4 * (n * c + d * c + 2 * d + m * c * d + m * c + n * m * c);
        Cost { flops, bytes }
    }
}

/// Random inputs for N images, C channels, D reduced width and M branches,
/// scaled so z and the logits are of order 1.
fn inputs(rng: &mut fastrand::Rng, n: usize, c: usize, d: usize, m: usize) -> Vec<Tensor> {
    let random = |rng: &mut fastrand::Rng, dims: &[usize], a: f32| random_input(rng, dims, -a, a);
    let mut affine = random(rng, &[2, d], 0.5);
    affine.data_mut()[..d].iter_mut().for_each(|v| *v += 1.0); // scales in [0.5, 1.5)
    vec![
        random(rng, &[n, c], 1.0),
        random(rng, &[d, c], 2.0 / (c as f32).sqrt()),
        affine,
        random(rng, &[m * c, d], 2.0 / (d as f32).sqrt()),
        random(rng, &[m * c], 0.5),
    ]
}

/// Correctness cases: C 1, 3, 64, 65, D 1, 8, 32, M 2 to 4, batch 1 and 3,
/// no activation and ReLU (sigmoid once); strided phases (D 100, 300 and
/// MAX_D: several z per invocation in phase 1; C 65 and 300: several channels
/// per invocation in phase 2),
/// bias offsets of 1e3 (shared by the branches, and on one branch), a single
/// spike in s, and a folded grid (more images than [`SMALL_GRID`]).
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut k = 0;
    for c in [1, 3, 64, 65] {
        for d in [1, 8, 32] {
            for m in 2..=4 {
                for act in [Activation::None, Activation::Relu] {
                    let n = [1, 3][k % 2];
                    k += 1;
                    let op = SkAttention { branches: m, reduce_activation: act };
                    cases.push(Case::new(format!("M {m}, {act:?}"), op, inputs(rng, n, c, d, m)));
                }
            }
        }
    }
    let op = |m, act| SkAttention { branches: m, reduce_activation: act };
    cases.push(Case::new("sigmoid", op(3, Activation::Sigmoid), inputs(rng, 3, 65, 32, 3)));
    cases.push(Case::new("D 100", op(2, Activation::Relu), inputs(rng, 3, 65, 100, 2)));
    cases.push(Case::new("D 300", op(2, Activation::None), inputs(rng, 1, 3, 300, 2)));
    cases.push(Case::new("D = MAX_D", op(2, Activation::Relu), inputs(rng, 1, 3, MAX_D, 2)));
    cases.push(Case::new("C 300, D 19", op(4, Activation::Relu), inputs(rng, 2, 300, 19, 4)));
    // Logits near +-1e3: without the max subtraction exp overflows or every term underflows.
    for (label, sign) in [("shared bias offset +1e3", 1.0), ("shared bias offset -1e3", -1.0)] {
        let mut x = inputs(rng, 3, 65, 32, 4);
        x[4].data_mut().iter_mut().for_each(|b| *b += sign * 1e3);
        cases.push(Case::new(label, op(4, Activation::Relu), x));
    }
    let mut x = inputs(rng, 3, 65, 8, 3);
    x[4].data_mut().iter_mut().enumerate().filter(|(i, _)| (i / 65) == (i % 65) % 3).for_each(|(_, b)| *b += 1e3);
    cases.push(Case::new("one branch +1e3", op(3, Activation::None), x));
    // s is zero but for one channel per image.
    let mut x = inputs(rng, 3, 65, 32, 2);
    x[0].data_mut().fill(0.0);
    for i in 0..3 {
        x[0].data_mut()[i * 65 + rng.usize(..65)] = 8.0;
    }
    cases.push(Case::new("one spike in s", op(2, Activation::Relu), x));
    // One workgroup per image: one more image than SMALL_GRID folds the grid into y.
    let x = inputs(rng, SMALL_GRID as usize + 1, 1, 1, 2);
    cases.push(Case::new("folded grid", op(2, Activation::Relu), x).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP: SkAttention = SkAttention { branches: 2, reduce_activation: Activation::Relu };

    fn err(op: SkAttention, dims: &[&[usize]]) -> String {
        let shapes: Vec<Shape> = dims.iter().map(|d| Shape::new(d).unwrap()).collect();
        op.output_shape(&shapes.iter().collect::<Vec<_>>()).unwrap_err().to_string()
    }

    #[test]
    fn bad_inputs_are_rejected() {
        // N 3, C 5, D 4, M 2.
        let ok: [&[usize]; 5] = [&[3, 5], &[4, 5], &[2, 4], &[10, 4], &[10]];
        let shapes = ok.map(|d| Shape::new(d).unwrap());
        assert_eq!(OP.output_shape(&shapes.each_ref()).unwrap().dims(), [3, 2, 5]);
        let with = |i: usize, dims: &'static [usize]| {
            let mut x = ok;
            x[i] = dims;
            err(OP, &x)
        };
        for m in [1, 5] {
            let e = err(SkAttention { branches: m, ..OP }, &ok);
            assert!(e.contains("sk_attention") && e.contains(&format!("branches must be 2 to 4, got {m}")), "{e}");
        }
        let e = err(OP, &ok[..4]);
        assert!(e.contains("expects 5 inputs (s, fc, fc_affine, select, select_bias), got 4"), "{e}");
        assert!(with(0, &[3, 5, 1, 1]).contains("s must be N x C, got [3 x 5 x 1 x 1]"));
        assert!(with(1, &[4, 5, 1]).contains("fc must be D x C, got [4 x 5 x 1]"));
        let e = with(1, &[4, 6]);
        assert!(e.contains("fc [4 x 6] must have C = 5 columns, the channels of s [3 x 5]"), "{e}");
        let e = with(2, &[2, 3]);
        assert!(e.contains("fc_affine must be [2 x 4] (scale, shift) for fc [4 x 5], got [2 x 3]"), "{e}");
        let e = with(3, &[15, 4]);
        assert!(e.contains("select must be [10 x 4]") && e.contains("s [3 x 5] and fc [4 x 5], got [15 x 4]"), "{e}");
        let e = with(4, &[5]);
        assert!(e.contains("select_bias must be [10] (M * C) to match select [10 x 4], got [5]"), "{e}");
        let e = err(OP, &[&[1, 1], &[MAX_D + 1, 1], &[2, MAX_D + 1], &[2, MAX_D + 1], &[2]]);
        assert!(
            e.contains("fc [4097 x 1] has D = 4097 rows") && e.contains("16 KiB") && e.contains("at most 4096"),
            "{e}"
        );
        let widest: [&[usize]; 5] = [&[1, 1], &[MAX_D, 1], &[2, MAX_D], &[2, MAX_D], &[2]];
        assert!(OP.output_shape(&widest.map(|d| Shape::new(d).unwrap()).each_ref()).is_ok());
        let e = err(OP, &[&[1, 1 << 30], &[4, 1 << 30], &[2, 4], &[1 << 31, 4], &[1 << 31]]);
        assert!(e.contains("element count") && e.contains("32-bit"), "{e}");
    }

    #[test]
    fn reference_is_softmax_of_the_mlp() {
        // z = relu(1 * (3 * 2) + 1) = 7; logits 7 + 0 and -7 + 0.5.
        let t = |dims: &[usize], v: Vec<f32>| Tensor::from_vec(dims, v).unwrap();
        let x = [t(&[1, 1], vec![2.0]), t(&[1, 1], vec![3.0]), t(&[2, 1], vec![1.0, 1.0])];
        let (select, bias) = (t(&[2, 1], vec![1.0, -1.0]), t(&[2], vec![0.0, 0.5]));
        let a = OP.reference(&[&x[0], &x[1], &x[2], &select, &bias]).unwrap();
        assert_eq!(a.shape().dims(), [1, 2, 1]);
        let e = (-13.5f64).exp();
        assert_eq!(a.data(), &[(1.0 / (1.0 + e)) as f32, (e / (1.0 + e)) as f32]);
        // With shift -10, ReLU zeroes z and the logits are the biases alone.
        let x2 = t(&[2, 1], vec![1.0, -10.0]);
        let a = OP.reference(&[&x[0], &x[1], &x2, &select, &bias]).unwrap();
        let e = (-0.5f64).exp();
        assert_eq!(a.data(), &[(e / (1.0 + e)) as f32, (1.0 / (1.0 + e)) as f32]);
    }
}
