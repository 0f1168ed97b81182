//! channel_affine: `y = scale[c] * x + shift[c]` per channel (dimension 1): a
//! BatchNorm in eval mode or a bias, as the canonical graph writes them before
//! the fusion pass folds them into the producing conv's or GEMM's epilogue.

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Error, Result, Shape, Tensor};

/// Inputs `x` [N, C, ...] and `affine` [2, C] (row 0 scale, row 1 shift) -> shaped like x.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelAffine;

/// Mirrors `struct Params` in shaders/channel_affine.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ChannelAffineParams {
    n: u32,
    c: u32,
    inner: u32,
    _pad: u32,
}

const WORKGROUP: u64 = 256;

impl ChannelAffine {
    /// (channels, elements per channel plane) of `x`.
    fn split(&self, x: &Shape) -> Result<(usize, usize)> {
        match x.dims() {
            [_, c, rest @ ..] => Ok((*c, rest.iter().product())),
            _ => Err(Error::invalid(self.name(), format!("x must be N x C x ..., got {x}"))),
        }
    }
}

impl Op for ChannelAffine {
    fn name(&self) -> &'static str {
        "channel_affine"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x", "affine"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let (x, affine) = (inputs[0], inputs[1]);
        let (c, _) = self.split(x)?;
        if affine.dims() != [2, c] {
            return Err(Error::invalid(self.name(), format!("affine must be [2 x {c}] for x {x}, got {affine}")));
        }
        Ok(x.clone())
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let (c, inner) = self.split(&shape)?;
        let (x, a) = (inputs[0].data(), inputs[1].data());
        let out = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ch = i / inner.max(1) % c;
                (a[ch] as f64 * v as f64 + a[c + ch] as f64) as f32
            })
            .collect();
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        let shape = expect_output(self, inputs, output)?;
        let (c, inner) = self.split(&shape)?;
        let op = self.name();
        let n = shape.numel();
        let params = ChannelAffineParams {
            n: to_u32(op, "element count", n)?,
            c: to_u32(op, "channels", c)?,
            inner: to_u32(op, "elements per channel", inner)?,
            _pad: 0,
        };
        let grid = gpu.grid_1d(op, (n as u64).div_ceil(WORKGROUP))?;
        Ok(vec![gpu.prepare(&kernel!("channel_affine"), &[], &params, &[inputs[0], inputs[1], output], grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let n = inputs[0].numel() as u64;
        Cost { flops: 2 * n, bytes: 4 * (2 * n + inputs[1].numel() as u64) }
    }
}

/// Correctness cases: ranks 2 to 4, C 1, 3, 65, planes of 1 and 13 x 17, and a
/// folded grid.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dims in [vec![1usize, 1], vec![3, 65], vec![2, 3, 221], vec![3, 65, 13, 17], vec![1, 1, 7, 7]] {
        let x = random_input(rng, &dims, -2.0, 2.0);
        let affine = random_input(rng, &[2, dims[1]], -1.5, 1.5);
        cases.push(Case::new(format!("{dims:?}"), ChannelAffine, vec![x, affine]));
    }
    // More than SMALL_GRID workgroups of 256: the grid folds into y.
    let n = SMALL_GRID as usize * 256 + 1;
    let x = random_input(rng, &[1, 3, n / 3 + 1], -1.0, 1.0);
    let affine = random_input(rng, &[2, 3], -1.0, 1.0);
    cases.push(Case::new("folded grid", ChannelAffine, vec![x, affine]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_scales_and_shifts_each_channel() {
        let x = Tensor::from_vec(&[1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let a = Tensor::from_vec(&[2, 2], vec![2.0, -1.0, 0.5, 1.0]).unwrap();
        let y = ChannelAffine.reference(&[&x, &a]).unwrap();
        assert_eq!(y.data(), &[2.5, 4.5, -2.0, -3.0]);
    }

    #[test]
    fn bad_shapes_are_named() {
        let x = Shape::new(&[2, 3, 4]).unwrap();
        let err = ChannelAffine.output_shape(&[&x, &Shape::new(&[2, 4]).unwrap()]).unwrap_err().to_string();
        assert!(err.contains("channel_affine") && err.contains("[2 x 3]") && err.contains("[2 x 4]"), "{err}");
        let err = ChannelAffine.output_shape(&[&Shape::new(&[5]).unwrap(), &x]).unwrap_err().to_string();
        assert!(err.contains("N x C"), "{err}");
    }
}
