//! cbam_channel_mlp: CBAM's channel attention after the global pools (the
//! `CbamChannelMlp` fusion): shared MLP on the average and max vectors, sum,
//! sigmoid, in one small kernel.

use super::{expect_inputs, expect_output, random_input, shapes_of, sigmoid, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{ensure, kernel, Error, Result, Shape, Tensor};

/// CBAM's shared channel MLP: `pooled` [N, 2, C] (row 0 the spatial average,
/// row 1 the spatial max of each channel), `fc1` [R, C] and `fc2` [C, R] (the
/// two 1x1 convs without bias, R <= C) -> [N, C] =
/// sigmoid(fc2 . relu(fc1 . avg) + fc2 . relu(fc1 . max)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CbamChannelMlp;

/// Most hidden units R: the kernel keeps them in workgroup memory (4096 f32 = 16 KiB).
pub const MAX_HIDDEN: usize = 4096;

/// Mirrors `struct Params` in shaders/cbam_channel_mlp.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CbamChannelMlpParams {
    n: u32,
    c: u32,
    r: u32,
    _pad: u32,
}

impl CbamChannelMlp {
    /// Validates the three shapes; returns (N, C, R).
    fn dims(&self, inputs: &[&Shape]) -> Result<(usize, usize, usize)> {
        expect_inputs(self, inputs)?;
        let op = self.name();
        let (pooled, fc1, fc2) = (inputs[0], inputs[1], inputs[2]);
        let &[n, 2, c] = pooled.dims() else {
            return Err(Error::invalid(op, format!("pooled must be N x 2 x C (average row, max row), got {pooled}")));
        };
        let &[r, fc1_c] = fc1.dims() else {
            return Err(Error::invalid(op, format!("fc1 must be R x C, got {fc1}")));
        };
        ensure!(fc1_c == c, op, "fc1 {fc1} expects {fc1_c} channels, pooled {pooled} has {c}");
        ensure!(
            fc2.dims() == [c, r],
            op,
            "fc2 must be [{c} x {r}] to map fc1 {fc1}'s {r} hidden units back to {c} channels, got {fc2}"
        );
        ensure!(r <= c, op, "fc1 {fc1} has more hidden units ({r}) than channels ({c}): the MLP must reduce");
        ensure!(
            r <= MAX_HIDDEN,
            op,
            "fc1 {fc1} has {r} hidden units; the kernel holds at most {MAX_HIDDEN} in 16 KiB of workgroup memory"
        );
        // The largest shader indices are into pooled and the weights.
        to_u32(op, "pooled element count", pooled.numel())?;
        to_u32(op, "fc1 element count", fc1.numel())?;
        Ok((n, c, r))
    }
}

impl Op for CbamChannelMlp {
    fn name(&self) -> &'static str {
        "cbam_channel_mlp"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["pooled", "fc1", "fc2"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        let (n, c, _) = self.dims(inputs)?;
        Shape::new(&[n, c])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let (n, c, r) = self.dims(&shapes_of(inputs))?;
        let (pooled, fc1, fc2) = (inputs[0].data(), inputs[1].data(), inputs[2].data());
        // relu(fc1 . v) for one pooled vector v.
        let hidden = |v: &[f32]| -> Vec<f64> {
            let row = |j: usize| fc1[j * c..(j + 1) * c].iter().zip(v).map(|(&w, &x)| w as f64 * x as f64).sum::<f64>();
            (0..r).map(|j| row(j).max(0.0)).collect()
        };
        // fc2[ch] . h.
        let fc2_row =
            |ch: usize, h: &[f64]| fc2[ch * r..(ch + 1) * r].iter().zip(h).map(|(&w, &x)| w as f64 * x).sum::<f64>();
        let mut out = Vec::with_capacity(n * c);
        for img in pooled.chunks(2 * c) {
            let (avg, max) = img.split_at(c);
            let (h_avg, h_max) = (hidden(avg), hidden(max));
            out.extend((0..c).map(|ch| sigmoid(fc2_row(ch, &h_avg) + fc2_row(ch, &h_max)) as f32));
        }
        Tensor::from_vec(&[n, c], out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let op = self.name();
        let (n, c, r) = self.dims(&super::gpu_shapes_of(inputs))?;
        let params = CbamChannelMlpParams { n: to_u32(op, "N", n)?, c: c as u32, r: r as u32, _pad: 0 };
        // One workgroup per image; 16-byte accesses where C and R are whole vec4s.
        let grid = gpu.grid_1d(op, n as u64)?;
        let kernel = if super::choose::channel_mlp_in_vec4s(c, r) {
            kernel!("cbam_channel_mlp_vec4")
        } else {
            kernel!("cbam_channel_mlp")
        };
        Ok(vec![gpu.prepare(&kernel, &[], &params, &[inputs[0], inputs[1], inputs[2], output], grid)?])
    }

    /// Per image: fc1 on two vectors (4RC), fc2 on both hidden vectors (4CR),
    /// the sums and sigmoids (O(C)); bytes: pooled, both weights and the output once.
    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let Ok((n, c, r)) = self.dims(inputs) else {
            return Cost::default();
        };
        let (n, c, r) = (n as u64, c as u64, r as u64);
        Cost { flops: n * (8 * r * c + 4 * c), bytes: 4 * (2 * n * c + 2 * r * c + n * c) }
    }
}

/// Values on a grid of `1 / steps` in [-max, max]: sums of their products are
/// exact in f32 while small, so cases with huge logits test the saturating
/// sigmoid rather than f32 rounding of a sum that is near zero by accident.
pub(crate) fn coarse_random(dims: &[usize], rng: &mut fastrand::Rng, max: f32, steps: f32) -> Tensor {
    let mut t = random_input(rng, dims, -max, max);
    t.data_mut().iter_mut().for_each(|v| *v = (*v * steps).round() / steps);
    t
}

/// Correctness cases: C in 1, 3, 65 with R = 1 and 4, batch 1 and 3, a channel
/// count past the 64 invocations, and saturating logits; on the vec4 kernel too (C up to
/// 2048, R up to 128).
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    // The last four run the vec4 kernel (4 divides C and R).
    let shapes = [(1, 1, 1), (3, 1, 1), (1, 3, 1), (3, 3, 1), (1, 65, 4), (3, 65, 1), (3, 65, 4), (2, 200, 13)];
    let vec4_shapes = [(1, 4, 4), (3, 8, 4), (2, 256, 16), (1, 2048, 128)];
    for (n, c, r) in shapes.into_iter().chain(vec4_shapes) {
        // Weights within 1 / sqrt(fan-in), as trained layers hold them: unscaled, C = 2048 gives
        // logits in the hundreds, whose f32 sums neither kernel holds to 1e-5 of the sigmoid.
        let rand = |dims: &[usize], fan_in: usize, rng: &mut fastrand::Rng| {
            let bound = (fan_in as f32).sqrt().recip();
            random_input(rng, dims, -bound, bound)
        };
        let inputs = vec![random_input(rng, &[n, 2, c], -1.0, 1.0), rand(&[r, c], c, rng), rand(&[c, r], r, rng)];
        cases.push(Case::new(format!("N {n}, C {c}, R {r}"), CbamChannelMlp, inputs));
    }
    // Pooled values in the hundreds: logits of thousands, sigmoids at 0 and 1.
    let inputs = vec![coarse_random(&[3, 2, 65], rng, 200.0, 1.0), coarse_random(&[4, 65], rng, 1.0, 8.0), {
        coarse_random(&[65, 4], rng, 1.0, 8.0)
    }];
    cases.push(Case::new("saturating logits", CbamChannelMlp, inputs));
    let inputs = vec![coarse_random(&[3, 2, 64], rng, 200.0, 1.0), coarse_random(&[4, 64], rng, 1.0, 8.0), {
        coarse_random(&[64, 4], rng, 1.0, 8.0)
    }];
    cases.push(Case::new("saturating logits, vec4", CbamChannelMlp, inputs));
    // One workgroup per image: one more image than SMALL_GRID folds the grid into y.
    let n = SMALL_GRID as usize + 1;
    let inputs = vec![random_input(rng, &[n, 2, 3], -1.0, 1.0), random_input(rng, &[1, 3], -1.0, 1.0), {
        random_input(rng, &[3, 1], -1.0, 1.0)
    }];
    cases.push(Case::new("folded grid", CbamChannelMlp, inputs).with_grid_limit(SMALL_GRID));
    let inputs = vec![random_input(rng, &[n, 2, 8], -1.0, 1.0), random_input(rng, &[4, 8], -1.0, 1.0), {
        random_input(rng, &[8, 4], -1.0, 1.0)
    }];
    cases.push(Case::new("folded grid, vec4", CbamChannelMlp, inputs).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(dims: [&[usize]; 3]) -> String {
        let shapes: Vec<Shape> = dims.iter().map(|d| Shape::new(d).unwrap()).collect();
        CbamChannelMlp.output_shape(&shapes.iter().collect::<Vec<_>>()).unwrap_err().to_string()
    }

    #[test]
    fn bad_shapes_are_rejected() {
        let e = err([&[1, 3, 8], &[2, 8], &[8, 2]]);
        assert!(e.contains("cbam_channel_mlp") && e.contains("pooled must be N x 2 x C") && e.contains("[1 x 3 x 8]"));
        assert!(err([&[2, 8], &[2, 8], &[8, 2]]).contains("pooled must be N x 2 x C"));
        assert!(err([&[1, 2, 8], &[2, 8, 1], &[8, 2]]).contains("fc1 must be R x C, got [2 x 8 x 1]"));
        let e = err([&[1, 2, 8], &[2, 7], &[8, 2]]);
        assert!(e.contains("fc1 [2 x 7] expects 7 channels, pooled [1 x 2 x 8] has 8"), "{e}");
        let e = err([&[1, 2, 8], &[2, 8], &[2, 8]]);
        assert!(e.contains("fc2 must be [8 x 2]") && e.contains("got [2 x 8]"), "{e}");
        let e = err([&[1, 2, 3], &[4, 3], &[3, 4]]);
        assert!(e.contains("more hidden units (4) than channels (3)"), "{e}");
        let e = err([&[1, 2, 5000], &[4097, 5000], &[5000, 4097]]);
        assert!(e.contains("4097 hidden units") && e.contains("at most 4096"), "{e}");
        let e = err([&[1 << 31, 2, 2], &[1, 2], &[2, 1]]);
        assert!(e.contains("pooled element count") && e.contains("32-bit"), "{e}");
        let x = Tensor::zeros(Shape::new(&[1, 2, 2]).unwrap());
        let e = CbamChannelMlp.reference(&[&x]).unwrap_err().to_string();
        assert!(e.contains("expects 3 inputs (pooled, fc1, fc2), got 1"), "{e}");
    }

    #[test]
    fn reference_matches_a_hand_computed_example() {
        // C = 2, R = 1: fc1 = [1, -1], fc2 = [[1], [-2]].
        // avg = [3, 1]: fc1 . avg = 2; max = [1, 4]: fc1 . max = -3 -> relu 0.
        // Logits: fc2 . 2 + fc2 . 0 = [2, -4].
        let pooled = Tensor::from_vec(&[1, 2, 2], vec![3.0, 1.0, 1.0, 4.0]).unwrap();
        let fc1 = Tensor::from_vec(&[1, 2], vec![1.0, -1.0]).unwrap();
        let fc2 = Tensor::from_vec(&[2, 1], vec![1.0, -2.0]).unwrap();
        let y = CbamChannelMlp.reference(&[&pooled, &fc1, &fc2]).unwrap();
        assert_eq!(y.shape().dims(), [1, 2]);
        let want = [1.0 / (1.0 + (-2.0f64).exp()), 1.0 / (1.0 + 4.0f64.exp())];
        for (g, w) in y.data().iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-7, "{g} vs {w}");
        }
    }
}
