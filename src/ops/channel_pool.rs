//! channel_pool: per-pixel mean and max over channels, CBAM's spatial-attention input.

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Result, Shape, Tensor};

/// x [N, C, H, W] -> [N, 2, H, W]: channel 0 is the mean over C, channel 1 the max.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelPool;

/// Mirrors `struct Params` in shaders/channel_pool.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ChannelPoolParams {
    n: u32,
    c: u32,
    hw: u32,
    total: u32,
}

const WORKGROUP: u64 = 256;

impl Op for ChannelPool {
    fn name(&self) -> &'static str {
        "channel_pool"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let [n, _, h, w] = inputs[0].nchw(self.name(), "x")?;
        Shape::new(&[n, 2, h, w])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [n, c, h, w] = inputs[0].shape().nchw(self.name(), "x")?;
        let (x, hw) = (inputs[0].data(), h * w);
        let mut out = vec![0.0; shape.numel()];
        for b in 0..n {
            for p in 0..hw {
                let column = (0..c).map(|k| x[(b * c + k) * hw + p]);
                let sum: f64 = column.clone().map(f64::from).sum();
                out[b * 2 * hw + p] = (sum / c as f64) as f32;
                out[(b * 2 + 1) * hw + p] = column.fold(f32::NEG_INFINITY, f32::max);
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let [n, c, h, w] = inputs[0].shape().nchw(self.name(), "x")?;
        let op = self.name();
        // The largest index the shader forms is into x.
        to_u32(op, "x element count", inputs[0].shape().numel())?;
        let total = to_u32(op, "N x H x W", n * h * w)?;
        let params = ChannelPoolParams {
            n: to_u32(op, "N", n)?,
            c: to_u32(op, "C", c)?,
            hw: to_u32(op, "H x W", h * w)?,
            total,
        };
        let grid = gpu.grid_1d(op, (total as u64).div_ceil(WORKGROUP))?;
        Ok(vec![gpu.prepare(&kernel!("channel_pool"), &[], &params, &[inputs[0], output], grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let x = inputs[0].numel() as u64;
        let out = 2 * (x / inputs[0].dims().get(1).copied().unwrap_or(1) as u64);
        // An add and a max per input element; output: a divide per mean.
        Cost { flops: 2 * x + out / 2, bytes: 4 * (x + out) }
    }
}

/// Correctness cases: C in 1, 3, 65 over odd and 56 x 56 maps, batch 1 and 3,
/// and channels that are all negative (the max must not start from 0).
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dims in [[1, 1, 1, 1], [3, 3, 7, 7], [1, 65, 13, 17], [3, 65, 56, 56], [3, 1, 13, 17], [1, 3, 56, 56]] {
        let x = random_input(rng, &dims, -1.0, 1.0);
        cases.push(Case::new("uniform [-1, 1)", ChannelPool, vec![x]));
    }
    let x = random_input(rng, &[3, 65, 7, 7], -9.0, -1.0);
    cases.push(Case::new("all negative", ChannelPool, vec![x]));
    // 65^2 pixels need 17 workgroups of 256: past SMALL_GRID the grid folds into y.
    let x = random_input(rng, &[1, 3, 65, 65], -1.0, 1.0);
    cases.push(Case::new("folded grid", ChannelPool, vec![x]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_rejected() {
        let x3 = Shape::new(&[2, 3, 4]).unwrap();
        let err = ChannelPool.output_shape(&[&x3]).unwrap_err().to_string();
        assert!(
            err.contains("channel_pool") && err.contains("x must be N x C x H x W") && err.contains("[2 x 3 x 4]"),
            "{err}"
        );
        let x = Shape::new(&[1, 2, 3, 4]).unwrap();
        let err = ChannelPool.output_shape(&[&x, &x]).unwrap_err().to_string();
        assert!(err.contains("channel_pool") && err.contains("expects 1 inputs"), "{err}");
        assert!(ChannelPool.output_shape(&[]).is_err());
    }

    #[test]
    fn reference_takes_mean_and_max_over_channels() {
        // Two channels of 1 x 2 pixels: pixel 0 sees (1, 3), pixel 1 sees (-4, -2).
        let x = Tensor::from_vec(&[1, 2, 1, 2], vec![1.0, -4.0, 3.0, -2.0]).unwrap();
        let y = ChannelPool.reference(&[&x]).unwrap();
        assert_eq!(y.shape().dims(), &[1, 2, 1, 2]);
        assert_eq!(y.data(), &[2.0, -3.0, 3.0, -2.0]);
    }
}
