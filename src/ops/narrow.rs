//! narrow: a window of consecutive channels, as torch.narrow / torch.split on dim 1.

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Error, Result, Shape, Tensor};

/// Input `x` [N, C, H, W] -> channels `first..first + count`, [N, count, H, W].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Narrow {
    /// First channel of the window.
    pub first: usize,
    /// Channels in the window.
    pub count: usize,
}

/// Mirrors `struct Params` in shaders/narrow.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NarrowParams {
    planes: u32,
    count: u32,
    channels: u32,
    first: u32,
    hw: u32,
    _pad: [u32; 3],
}

const WORKGROUP: u32 = 64;

impl Op for Narrow {
    fn name(&self) -> &'static str {
        "narrow"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let [n, c, h, w] = inputs[0].nchw(self.name(), "x")?;
        let end = self.first.checked_add(self.count).filter(|&e| e <= c && self.count > 0);
        if end.is_none() {
            let last = self.first.saturating_add(self.count);
            let msg = format!("channels {}..{last} are not a non-empty window of x {}", self.first, inputs[0]);
            return Err(Error::invalid(self.name(), msg));
        }
        Shape::new(&[n, self.count, h, w])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [n, c, h, w] = inputs[0].shape().nchw(self.name(), "x")?;
        let (x, hw) = (inputs[0].data(), h * w);
        let mut out = Vec::with_capacity(shape.numel());
        for b in 0..n {
            let start = (b * c + self.first) * hw;
            out.extend_from_slice(&x[start..start + self.count * hw]);
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        let shape = expect_output(self, inputs, output)?;
        let op = self.name();
        let [n, c, h, w] = inputs[0].shape().nchw(op, "x")?;
        to_u32(op, "x element count", inputs[0].shape().numel())?;
        let params = NarrowParams {
            planes: to_u32(op, "N x count", n * self.count)?,
            count: to_u32(op, "count", self.count)?,
            channels: to_u32(op, "C", c)?,
            first: to_u32(op, "first", self.first)?,
            hw: to_u32(op, "H x W", h * w)?,
            _pad: [0; 3],
        };
        let [y, z, _] = gpu.grid_1d(op, (shape.numel() / (h * w)) as u64)?;
        // Four pixels per invocation with 16-byte accesses where quads never straddle two planes.
        let (kernel, per_invocation) =
            if super::choose::pixels_in_vec4s(h * w) { (kernel!("narrow_vec4"), 4) } else { (kernel!("narrow"), 1) };
        let grid = [(params.hw / per_invocation).div_ceil(WORKGROUP), y, z];
        Ok(vec![gpu.prepare(&kernel, &[], &params, &[inputs[0], output], grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let out = self.output_shape(inputs).map_or(0, |s| s.numel() as u64);
        Cost { flops: 0, bytes: 8 * out }
    }
}

/// Correctness cases: windows at the start, middle and end; C 1 to 512; batch 1 to 3; the scalar
/// kernel and (4 divides H x W) the vec4 one.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for (dims, first, count) in [
        ([1, 1, 1, 1], 0, 1),
        ([3, 3, 7, 7], 1, 2),
        ([3, 65, 13, 17], 0, 32),
        ([1, 65, 56, 56], 33, 32),
        ([3, 65, 13, 17], 64, 1),
        ([3, 10, 4, 6], 3, 5),
        ([2, 4, 2, 2], 3, 1),
        ([1, 512, 7, 8], 256, 256),
    ] {
        let x = random_input(rng, &dims, -1.0, 1.0);
        cases.push(Case::new(format!("channels {first}..{}", first + count), Narrow { first, count }, vec![x]));
    }
    // More output planes than SMALL_GRID: the plane index must fold from y into z.
    for (label, hw) in [("folded grid", [1, 1]), ("vec4, folded grid", [2, 2])] {
        let x = random_input(rng, &[1, SMALL_GRID as usize + 3, hw[0], hw[1]], -1.0, 1.0);
        let narrow = Narrow { first: 1, count: SMALL_GRID as usize + 1 };
        cases.push(Case::new(label, narrow, vec![x]).with_grid_limit(SMALL_GRID));
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_outside_the_channels_are_rejected() {
        let x = Shape::new(&[2, 4, 3, 3]).unwrap();
        let err = Narrow { first: 3, count: 2 }.output_shape(&[&x]).unwrap_err().to_string();
        assert!(err.contains("narrow") && err.contains("3..5") && err.contains("[2 x 4 x 3 x 3]"), "{err}");
        assert!(Narrow { first: 0, count: 0 }.output_shape(&[&x]).is_err());
        assert!(Narrow { first: usize::MAX, count: 2 }.output_shape(&[&x]).is_err());
        assert!(Narrow { first: 0, count: 1 }.output_shape(&[&Shape::new(&[4, 3]).unwrap()]).is_err());
    }

    #[test]
    fn reference_takes_the_window_of_each_image() {
        let x = Tensor::from_vec(&[2, 3, 1, 1], vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let y = Narrow { first: 1, count: 2 }.reference(&[&x]).unwrap();
        assert_eq!(y.data(), &[1.0, 2.0, 4.0, 5.0]);
    }
}
