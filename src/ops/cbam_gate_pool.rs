//! cbam_gate_pool: CBAM's channel gate fused with the per-pixel channel mean
//! and max that feed the spatial attention (the `CbamGatePool` fusion). The
//! gated tensor x * ca is never stored.

use super::cbam_channel_mlp::coarse_random;
use super::{expect_inputs, expect_output, gpu_shapes_of, random_input, shapes_of, to_u32, Case, Cost, Op};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Result, Shape, Tensor};

/// `x` [N, C, H, W] and `ca` [N, C] (channel weights, already sigmoid-ed) ->
/// [N, 2, H, W]: channel 0 the mean over c of x[n, c, p] * ca[n, c], channel 1
/// the max over c of the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CbamGatePool;

/// Mirrors `struct Params` in shaders/cbam_gate_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CbamGatePoolParams {
    pixels: u32,
    c: u32,
    hw: u32,
    _pad: u32,
}

const WORKGROUP: u64 = 256;

impl CbamGatePool {
    /// Validates x and ca; returns x's [N, C, H, W].
    fn dims(&self, inputs: &[&Shape]) -> Result<[usize; 4]> {
        expect_inputs(self, inputs)?;
        let op = self.name();
        let (x, ca) = (inputs[0], inputs[1]);
        let [n, c, h, w] = x.nchw(op, "x")?;
        ensure!(
            ca.dims() == [n, c],
            op,
            "ca must be [{n} x {c}] (one weight per image and channel of x {x}), got {ca}"
        );
        to_u32(op, "x element count", x.numel())?;
        // With C = 1 the output has twice as many elements as x.
        to_u32(op, "output element count", (n * h * w).saturating_mul(2).max(x.numel()))?;
        Ok([n, c, h, w])
    }
}

impl Op for CbamGatePool {
    fn name(&self) -> &'static str {
        "cbam_gate_pool"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x", "ca"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        let [n, _, h, w] = self.dims(inputs)?;
        Shape::new(&[n, 2, h, w])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let [n, c, h, w] = self.dims(&shapes_of(inputs))?;
        let (x, ca) = (inputs[0].data(), inputs[1].data());
        let hw = h * w;
        let mut out = vec![0.0f32; n * 2 * hw];
        for img in 0..n {
            for p in 0..hw {
                let gated = (0..c).map(|ch| x[(img * c + ch) * hw + p] as f64 * ca[img * c + ch] as f64);
                let (sum, max) = gated.fold((0.0, f64::NEG_INFINITY), |(s, m), g| (s + g, m.max(g)));
                out[img * 2 * hw + p] = (sum / c as f64) as f32;
                out[(img * 2 + 1) * hw + p] = max as f32;
            }
        }
        Tensor::from_vec(&[n, 2, h, w], out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let [n, c, h, w] = self.dims(&gpu_shapes_of(inputs))?;
        // Every size below is at most an element count checked by dims().
        let (pixels, hw) = ((n * h * w) as u32, (h * w) as u32);
        let params = CbamGatePoolParams { pixels, c: c as u32, hw, _pad: 0 };
        // Four pixels per invocation with 16-byte accesses when rows of 4 never
        // straddle two images.
        let (kernel, per_invocation) = if super::choose::pixels_in_vec4s(hw as usize) {
            (kernel!("cbam_gate_pool_vec4"), 4)
        } else {
            (kernel!("cbam_gate_pool"), 1)
        };
        let grid = gpu.grid_1d(self.name(), (pixels as u64 / per_invocation).div_ceil(WORKGROUP))?;
        Ok(vec![gpu.prepare(&kernel, &[], &params, &[inputs[0], inputs[1], output], grid)?])
    }

    /// Per element of x a multiply, an add and a max; bytes: x and ca read
    /// once, the two pooled maps written once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok([n, c, h, w]) = self.dims(inputs) else {
            return Cost::default();
        };
        let (numel, pixels) = ((n * c * h * w) as u64, (n * h * w) as u64);
        Cost { flops: 3 * numel, bytes: 4 * (numel + (n * c) as u64 + 2 * pixels) }
    }
}

/// Correctness cases: C in 1, 3, 65, spatial 1 x 1, 7 x 7, 13 x 17 (scalar
/// kernel) and 56 x 56, 2 x 6 (vec4 kernel), batch 1 and 3, huge magnitudes,
/// and a folded grid.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let rand = |dims: &[usize], rng: &mut fastrand::Rng, lo: f32, hi: f32| random_input(rng, dims, lo, hi);
    for [n, c, h, w] in [[1, 1, 1, 1], [3, 3, 1, 1], [1, 3, 7, 7], [3, 65, 7, 7], [1, 65, 13, 17], [3, 1, 13, 17]]
        .into_iter()
        .chain([[1, 65, 56, 56], [3, 3, 56, 56], [3, 65, 2, 6], [1, 1, 56, 56]])
    {
        let inputs = vec![rand(&[n, c, h, w], rng, -1.0, 1.0), rand(&[n, c], rng, 0.0, 1.0)];
        let kernel = if (h * w) % 4 == 0 { "vec4" } else { "scalar" };
        cases.push(Case::new(format!("C {c}, {kernel}"), CbamGatePool, inputs));
    }
    let inputs = vec![coarse_random(&[3, 65, 13, 17], rng, 1e6, 1.0), rand(&[3, 65], rng, 0.0, 1.0)];
    cases.push(Case::new("magnitudes up to 1e6", CbamGatePool, inputs));
    // 63 x 65 pixels (not a multiple of 4: the scalar kernel) need 15 workgroups of 256
    // and 255 invocations more: past 15 workgroups per dimension the grid folds into y.
    let inputs = vec![rand(&[1, 1, 63, 65], rng, -1.0, 1.0), rand(&[1, 1], rng, 0.0, 1.0)];
    cases.push(Case::new("folded grid", CbamGatePool, inputs).with_grid_limit(15));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(x: &[usize], ca: &[usize]) -> String {
        let (x, ca) = (Shape::new(x).unwrap(), Shape::new(ca).unwrap());
        CbamGatePool.output_shape(&[&x, &ca]).unwrap_err().to_string()
    }

    #[test]
    fn bad_shapes_are_rejected() {
        let e = err(&[2, 3, 7], &[2, 3]);
        assert!(e.contains("cbam_gate_pool") && e.contains("x must be N x C x H x W, got [2 x 3 x 7]"), "{e}");
        let e = err(&[2, 3, 7, 7], &[2, 4]);
        assert!(e.contains("ca must be [2 x 3]") && e.contains("[2 x 3 x 7 x 7]") && e.contains("got [2 x 4]"), "{e}");
        assert!(err(&[2, 3, 7, 7], &[2, 3, 1, 1]).contains("ca must be [2 x 3]"));
        let e = err(&[1, 2, 65536, 65536], &[1, 2]);
        assert!(e.contains("x element count") && e.contains("32-bit"), "{e}");
        let e = err(&[1, 1, 65536, 40000], &[1, 1]);
        assert!(e.contains("output element count") && e.contains("32-bit"), "{e}");
        let x = Tensor::zeros(Shape::new(&[1, 1, 1, 1]).unwrap());
        let e = CbamGatePool.reference(&[&x]).unwrap_err().to_string();
        assert!(e.contains("expects 2 inputs (x, ca), got 1"), "{e}");
    }

    #[test]
    fn reference_matches_a_hand_computed_example() {
        // One image, C = 2, 1 x 2 pixels; ca = [0.5, 2].
        // Pixel 0: gated [4 * 0.5, 1 * 2] = [2, 2]; pixel 1: [-2 * 0.5, -3 * 2] = [-1, -6].
        let x = Tensor::from_vec(&[1, 2, 1, 2], vec![4.0, -2.0, 1.0, -3.0]).unwrap();
        let ca = Tensor::from_vec(&[1, 2], vec![0.5, 2.0]).unwrap();
        let y = CbamGatePool.reference(&[&x, &ca]).unwrap();
        assert_eq!(y.shape().dims(), [1, 2, 1, 2]);
        assert_eq!(y.data(), &[2.0, -3.5, 2.0, -1.0]);
    }
}
