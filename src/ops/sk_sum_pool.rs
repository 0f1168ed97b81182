//! sk_sum_pool: SKNet's branch sum fused with the global average pool (the
//! `SkSumPool` fusion rule): the summed tensor U is never stored.

use super::weighted_sum::MAX_BRANCHES;
use super::{expect_inputs, expect_output, gpu_shapes_of, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Result, Shape, Tensor};

/// The pooled descriptor of a selective-kernel block: inputs `b0`, `b1`, ...
/// (`branches` tensors, each [N, C, H, W]) -> s [N, C] with
/// s[n, c] = mean over (h, w) of sum over m of b_m[n, c, h, w].
///
/// One dispatch for every M: the shader has four branch slots (5 storage
/// buffers with the output, within WebGPU's default 8) and takes M as an
/// override constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkSumPool {
    /// M, the number of branches: 2 to 4 (the shader has four branch bindings).
    pub branches: usize,
}

/// Mirrors `struct Params` in shaders/sk_sum_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SkSumPoolParams {
    planes: u32,
    hw: u32,
    _pad: [u32; 2],
}

const WORKGROUP: u64 = 64;
const NAMES: [&str; 4] = ["b0", "b1", "b2", "b3"];

impl SkSumPool {
    /// Validates the branch count and shapes; returns the shader parameters.
    fn params(&self, inputs: &[&Shape]) -> Result<SkSumPoolParams> {
        let op = self.name();
        ensure!(
            (2..=MAX_BRANCHES).contains(&self.branches),
            op,
            "branches must be 2 to {MAX_BRANCHES}, got {}",
            self.branches
        );
        expect_inputs(self, inputs)?;
        let b0 = inputs[0];
        let [n, c, h, w] = b0.nchw(op, "b0")?;
        for (m, b) in inputs.iter().enumerate().skip(1) {
            ensure!(*b == b0, op, "every branch must have b0's shape: b{m} {b} differs from b0 {b0}");
        }
        to_u32(op, "branch element count", b0.numel())?;
        Ok(SkSumPoolParams { planes: to_u32(op, "N * C", n * c)?, hw: to_u32(op, "H * W", h * w)?, _pad: [0; 2] })
    }
}

impl Op for SkSumPool {
    fn name(&self) -> &'static str {
        "sk_sum_pool"
    }

    fn input_names(&self) -> Vec<&'static str> {
        // Out-of-range counts are reported by `params`; never slice past the names.
        NAMES[..self.branches.min(NAMES.len())].to_vec()
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        self.params(inputs)?;
        let [n, c, _, _] = inputs[0].nchw(self.name(), "b0")?;
        Shape::new(&[n, c])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let hw = inputs[0].shape().numel() / shape.numel();
        let out = (0..shape.numel())
            .map(|p| {
                let plane = p * hw..(p + 1) * hw;
                let sum: f64 = inputs.iter().flat_map(|b| &b.data()[plane.clone()]).map(|&v| v as f64).sum();
                (sum / hw as f64) as f32
            })
            .collect();
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let params = self.params(&gpu_shapes_of(inputs))?;
        let grid = gpu.grid_1d(self.name(), (params.planes as u64).div_ceil(WORKGROUP))?;
        // Unused branch slots hold b0 and are not read.
        let slot = |k: usize| *inputs.get(k).unwrap_or(&inputs[0]);
        let bindings = [slot(0), slot(1), slot(2), slot(3), output];
        // M is an override constant: one pipeline per branch count, each loop
        // holding only the loads it needs.
        let constants = [("BRANCHES", self.branches as f64)];
        // Four pixels per access where quads never straddle two planes.
        let kernel = if super::choose::pixels_in_vec4s(params.hw as usize) {
            kernel!("sk_sum_pool_vec4")
        } else {
            kernel!("sk_sum_pool")
        };
        Ok(vec![gpu.prepare(&kernel, &constants, &params, &bindings, grid)?])
    }

    /// One add per branch element (the branch sum and the accumulation) and one
    /// division per plane; every branch read once, s written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok(p) = self.params(inputs) else {
            return Cost::default();
        };
        let elements = self.branches as u64 * p.planes as u64 * p.hw as u64;
        Cost { flops: elements + p.planes as u64, bytes: 4 * (elements + p.planes as u64) }
    }
}

fn random(dims: &[usize], rng: &mut fastrand::Rng, lo: f32, hi: f32) -> Tensor {
    random_input(rng, dims, lo, hi)
}

/// Correctness cases: 2 to 4 branches over 1 x 1, 7 x 7, 13 x 17, 2 x 6 and 56 x 56
/// planes, batch 1 to 3, C 1 to 65; non-negative (post-ReLU) branches, a 1e3 offset, and a
/// single spike per plane (in b1 with M = 2, in b3 with M = 4, and on the vec4 kernel).
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    // The scalar kernel, then the vec4 one (4 divides H x W; 2 x 6: a chunk of 3 quads).
    let shapes = [[1, 1, 1, 1], [3, 3, 7, 7], [1, 65, 13, 17], [3, 64, 56, 56], [2, 5, 2, 6]];
    for branches in 2..=4 {
        for dims in shapes {
            let inputs = (0..branches).map(|_| random(&dims, rng, -1.0, 1.0)).collect();
            cases.push(Case::new(format!("M {branches}"), SkSumPool { branches }, inputs));
        }
    }
    let dims = [1, 65, 56, 56];
    let relu = (0..3).map(|_| random(&dims, rng, 0.0, 1.0)).collect();
    cases.push(Case::new("M 3, non-negative", SkSumPool { branches: 3 }, relu));
    let offset = (0..4).map(|_| random(&dims, rng, 1e3 - 1.0, 1e3 + 1.0)).collect();
    cases.push(Case::new("M 4, offset 1e3", SkSumPool { branches: 4 }, offset));
    // One pixel per plane of b1 carries 1e3, everything else is small.
    let spiked = |dims: [usize; 4], rng: &mut fastrand::Rng| {
        let mut t = random(&dims, rng, -1e-3, 1e-3);
        for plane in t.data_mut().chunks_mut(dims[2] * dims[3]) {
            plane[rng.usize(..plane.len())] = 1e3;
        }
        t
    };
    let spike = spiked([3, 3, 13, 17], rng);
    let b0 = random(&[3, 3, 13, 17], rng, -1e-3, 1e-3);
    cases.push(Case::new("M 2, one spike", SkSumPool { branches: 2 }, vec![b0.clone(), spike.clone()]));
    // The same spike in the fourth slot, which only M = 4 reads.
    let small = (0..2).map(|_| random(&[3, 3, 13, 17], rng, -1e-3, 1e-3));
    let inputs = std::iter::once(b0).chain(small).chain([spike]).collect();
    cases.push(Case::new("M 4, one spike in b3", SkSumPool { branches: 4 }, inputs));
    // The spike again where the vec4 kernel runs (12 x 16: 48 quads, chunks of 16).
    let inputs = vec![random(&[3, 3, 12, 16], rng, -1e-3, 1e-3), spiked([3, 3, 12, 16], rng)];
    cases.push(Case::new("M 2, vec4, one spike", SkSumPool { branches: 2 }, inputs));
    // One plane per invocation: one more plane than SMALL_GRID workgroups hold folds the grid into y
    // (both kernels).
    for (label, hw) in [("M 2, folded grid", [1, 1]), ("M 2, vec4, folded grid", [2, 2])] {
        let dims = [1, SMALL_GRID as usize * WORKGROUP as usize + 1, hw[0], hw[1]];
        let inputs = (0..2).map(|_| random(&dims, rng, -1.0, 1.0)).collect();
        cases.push(Case::new(label, SkSumPool { branches: 2 }, inputs).with_grid_limit(SMALL_GRID));
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(branches: usize, dims: &[&[usize]]) -> String {
        let shapes: Vec<Shape> = dims.iter().map(|d| Shape::new(d).unwrap()).collect();
        SkSumPool { branches }.output_shape(&shapes.iter().collect::<Vec<_>>()).unwrap_err().to_string()
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let x: &[usize] = &[2, 3, 5, 5];
        for m in [0, 1, 5] {
            let e = err(m, &[x; 2]);
            assert!(e.contains("sk_sum_pool") && e.contains(&format!("branches must be 2 to 4, got {m}")), "{e}");
        }
        let e = err(3, &[x; 2]);
        assert!(e.contains("expects 3 inputs (b0, b1, b2), got 2"), "{e}");
        let e = err(2, &[&[2, 3, 25], &[2, 3, 25]]);
        assert!(e.contains("b0 must be N x C x H x W, got [2 x 3 x 25]"), "{e}");
        let e = err(3, &[x, x, &[2, 3, 5, 4]]);
        assert!(e.contains("b2 [2 x 3 x 5 x 4] differs from b0 [2 x 3 x 5 x 5]"), "{e}");
        let big: &[usize] = &[1, 1, 70_000, 70_000];
        let e = err(2, &[big; 2]);
        assert!(e.contains("branch element count") && e.contains("32-bit"), "{e}");
    }

    #[test]
    fn reference_sums_branches_then_averages() {
        let b0 = Tensor::from_vec(&[1, 2, 1, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let b1 = Tensor::from_vec(&[1, 2, 1, 2], vec![10.0, 20.0, 30.0, 40.0]).unwrap();
        let s = SkSumPool { branches: 2 }.reference(&[&b0, &b1]).unwrap();
        assert_eq!(s.shape().dims(), [1, 2]);
        assert_eq!(s.data(), &[16.5, 38.5]);
    }

    #[test]
    fn cost_counts_every_branch_element() {
        let x = Shape::new(&[2, 3, 4, 5]).unwrap();
        let c = SkSumPool { branches: 3 }.cost(&[&x, &x, &x]);
        assert_eq!(c, Cost { flops: 3 * 120 + 6, bytes: 4 * (3 * 120 + 6) });
    }
}
