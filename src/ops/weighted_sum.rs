//! weighted_sum: SK's final step, the branches summed with per-channel weights.

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Error, Result, Shape, Tensor};

/// Most branches supported, all bound in one dispatch (4 branches, the
/// weights and the output stay within 8 storage buffers).
pub const MAX_BRANCHES: usize = 4;

/// Inputs `b0`..`b{M-1}` (the branches, each [N, C, H, W]) and `weights`
/// [N, M, C] -> [N, C, H, W] = sum over m of weights[n, m, c] * b_m[n, c, h, w].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightedSum {
    /// M, 1 to [`MAX_BRANCHES`].
    pub branches: usize,
}

/// Mirrors `struct Params` in shaders/weighted_sum.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct WeightedSumParams {
    planes: u32,
    m: u32,
    c: u32,
    hw: u32,
}

/// Invocations per workgroup, along the pixels of one (n, c) plane.
const WORKGROUP: u32 = 64;

impl WeightedSum {
    /// [N, C, H, W] of the branches, checked against each other and `weights`.
    fn dims(&self, inputs: &[&Shape]) -> Result<[usize; 4]> {
        expect_inputs(self, inputs)?;
        let m = self.branches;
        let first = inputs[0];
        let [n, c, _, _] = first.nchw(self.name(), "b0")?;
        if let Some((i, other)) = inputs[1..m].iter().enumerate().find(|(_, s)| **s != first) {
            return Err(Error::invalid(self.name(), format!("branch b{} {other} differs from b0 {first}", i + 1)));
        }
        let weights = inputs[m];
        if weights.dims() != [n, m, c] {
            return Err(Error::invalid(
                self.name(),
                format!("weights must be N x M x C = [{n} x {m} x {c}] for branches {first}, got weights {weights}"),
            ));
        }
        first.nchw(self.name(), "b0")
    }
}

impl Op for WeightedSum {
    fn name(&self) -> &'static str {
        "weighted_sum"
    }

    fn input_names(&self) -> Vec<&'static str> {
        let mut names = ["b0", "b1", "b2", "b3"][..self.branches.clamp(1, MAX_BRANCHES)].to_vec();
        names.push("weights");
        names
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        if !(1..=MAX_BRANCHES).contains(&self.branches) {
            return Err(Error::invalid(
                self.name(),
                format!("{} branches; 1 to {MAX_BRANCHES} are supported", self.branches),
            ));
        }
        let [n, c, h, w] = self.dims(inputs)?;
        Shape::new(&[n, c, h, w])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [_, c, h, w] = shape.nchw(self.name(), "b0")?;
        let (m, weights, hw) = (self.branches, inputs[self.branches].data(), h * w);
        let out = (0..shape.numel())
            .map(|i| {
                let (n, k) = (i / hw / c, i / hw % c);
                let acc: f64 = (0..m).map(|b| weights[(n * m + b) * c + k] as f64 * inputs[b].data()[i] as f64).sum();
                acc as f32
            })
            .collect();
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        let shape = expect_output(self, inputs, output)?;
        let op = self.name();
        let [n, c, h, w] = shape.nchw(op, "b0")?;
        to_u32(op, "branch element count", shape.numel())?;
        let params = WeightedSumParams {
            planes: to_u32(op, "N x C", n * c)?,
            m: to_u32(op, "M", self.branches)?,
            c: to_u32(op, "C", c)?,
            hw: to_u32(op, "H x W", h * w)?,
        };
        // Unused branch slots are bound to b0; the shader never reads them.
        let m = self.branches;
        let branch = |i: usize| if i < m { inputs[i] } else { inputs[0] };
        let bindings = [branch(0), branch(1), branch(2), branch(3), inputs[m], output];
        // x along a plane's pixels; the planes folded into y and z.
        let [y, z, _] = gpu.grid_1d(op, (n * c) as u64)?;
        // Four pixels per invocation with 16-byte accesses where quads never straddle two planes
        // (the branch count an override constant there, as in sk_sum_pool).
        let (kernel, per_invocation, constants) = if super::choose::pixels_in_vec4s(h * w) {
            (kernel!("weighted_sum_vec4"), 4, vec![("BRANCHES", m as f64)])
        } else {
            (kernel!("weighted_sum"), 1, vec![])
        };
        let grid = [(params.hw / per_invocation).div_ceil(WORKGROUP), y, z];
        Ok(vec![gpu.prepare(&kernel, &constants, &params, &bindings, grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let (out, m) = (inputs[0].numel() as u64, self.branches as u64);
        let weights = inputs[self.branches].numel() as u64;
        // A multiply-add per branch element; read every branch and weight, write one map.
        Cost { flops: 2 * m * out, bytes: 4 * (m * out + weights + out) }
    }
}

/// Correctness cases: M = 1 to 4 over C in 1, 3, 65, maps 1 x 1 to 56 x 56, batch 1 to 3, with
/// softmax-like weights in [0, 1) and also signed ones; the scalar and the vec4 kernel.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let case = |label: String, m: usize, dims: [usize; 4], lo: f32, rng: &mut fastrand::Rng| {
        let [n, c, h, w] = dims;
        // A single output is compared against its own size (check::compare scales by the output's
        // RMS): branches of both signs could cancel it to ~1e-5 of its terms, under f32's rounding
        // of them (seed 912398461299283957 did). Its branches are positive; the other shapes keep
        // both signs, where the RMS of many outputs sets the scale.
        let x_lo = if n * c * h * w == 1 { 0.5 } else { -1.0 };
        let mut inputs: Vec<Tensor> = (0..m).map(|_| random_input(rng, &dims, x_lo, 1.0)).collect();
        inputs.push(random_input(rng, &[n, m, c], lo, 1.0));
        Case::new(label, WeightedSum { branches: m }, inputs)
    };
    let mut cases = Vec::new();
    let shapes = [(2, [1, 1, 1, 1]), (3, [3, 3, 7, 7]), (4, [1, 65, 13, 17]), (2, [3, 65, 56, 56]), (4, [3, 3, 1, 1])];
    for (m, dims) in shapes {
        cases.push(case(format!("M = {m}"), m, dims, 0.0, rng));
    }
    cases.push(case("M = 1".into(), 1, [3, 3, 7, 7], 0.0, rng));
    cases.push(case("M = 3, signed weights".into(), 3, [3, 65, 13, 17], -2.0, rng));
    // The vec4 kernel (4 divides H x W) at every M, batch 3, a plane of one quad and quads that
    // leave a workgroup part empty (5 x 20: 25 quads).
    for (m, dims) in [(1, [3, 5, 4, 4]), (3, [3, 7, 5, 20]), (4, [2, 3, 2, 2]), (4, [1, 65, 28, 28])] {
        cases.push(case(format!("M = {m}, vec4"), m, dims, -1.0, rng));
    }
    // More planes than SMALL_GRID: the plane index must fold from y into z (both kernels).
    for (label, hw) in [("M = 2, folded grid", [1, 1]), ("M = 2, vec4, folded grid", [2, 2])] {
        let folded = case(label.into(), 2, [1, SMALL_GRID as usize + 1, hw[0], hw[1]], 0.0, rng);
        cases.push(folded.with_grid_limit(SMALL_GRID));
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(dims: &[usize]) -> Shape {
        Shape::new(dims).unwrap()
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let two = WeightedSum { branches: 2 };
        let b = shape(&[3, 4, 5, 6]);
        let err = two.output_shape(&[&b, &shape(&[3, 4, 5, 7]), &shape(&[3, 2, 4])]).unwrap_err().to_string();
        assert!(
            err.contains("weighted_sum") && err.contains("b1 [3 x 4 x 5 x 7]") && err.contains("b0 [3 x 4 x 5 x 6]"),
            "{err}"
        );
        for bad in [[3, 3, 4], [2, 2, 4], [3, 2, 5]] {
            let err = two.output_shape(&[&b, &b, &shape(&bad)]).unwrap_err().to_string();
            assert!(err.contains("[3 x 4 x 5 x 6]") && err.contains(&shape(&bad).to_string()), "{err}");
        }
        let err = two.output_shape(&[&b, &shape(&[3, 2, 4])]).unwrap_err().to_string();
        assert!(err.contains("expects 3 inputs"), "{err}");
        let err = WeightedSum { branches: 5 }.output_shape(&[&b]).unwrap_err().to_string();
        assert!(err.contains("5 branches"), "{err}");
        assert!(two.output_shape(&[&shape(&[3, 4, 5]), &shape(&[3, 4, 5]), &shape(&[3, 2, 4])]).is_err());
        assert_eq!(two.output_shape(&[&b, &b, &shape(&[3, 2, 4])]).unwrap().dims(), &[3, 4, 5, 6]);
    }

    #[test]
    fn reference_weights_each_branch_per_channel() {
        // M = 2, N = 1, C = 2, one pixel: out[c] = w[0, 0, c] b0[c] + w[0, 1, c] b1[c].
        let b0 = Tensor::from_vec(&[1, 2, 1, 1], vec![1.0, 2.0]).unwrap();
        let b1 = Tensor::from_vec(&[1, 2, 1, 1], vec![10.0, 20.0]).unwrap();
        let weights = Tensor::from_vec(&[1, 2, 2], vec![0.5, 0.25, 0.5, 0.75]).unwrap();
        let y = WeightedSum { branches: 2 }.reference(&[&b0, &b1, &weights]).unwrap();
        assert_eq!(y.shape().dims(), &[1, 2, 1, 1]);
        assert_eq!(y.data(), &[5.5, 15.5]);
    }
}
