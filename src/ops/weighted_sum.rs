//! weighted_sum: SK's final step, the branches summed with per-channel weights.

use super::{expect_inputs, expect_output, shapes_of, to_u32, Case, Cost, Op};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Error, Result, Shape, Tensor};

/// Inputs `x` [M, N, C, H, W] (M stacked branches) and `weights` [N, M, C]
/// -> [N, C, H, W] = sum over m of weights[n, m, c] * x[m, n, c, h, w].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WeightedSum;

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
    /// [M, N, C, H, W] of `x`, checked against `weights`.
    fn dims(&self, x: &Shape, weights: &Shape) -> Result<[usize; 5]> {
        let [m, n, c, h, w] = match x.dims()[..] {
            [m, n, c, h, w] => [m, n, c, h, w],
            _ => {
                return Err(Error::invalid(
                    self.name(),
                    format!("x must be M x N x C x H x W (stacked branches), got {x}"),
                ))
            }
        };
        if weights.dims() != [n, m, c] {
            return Err(Error::invalid(
                self.name(),
                format!("weights must be N x M x C = [{n} x {m} x {c}] for x {x}, got weights {weights}"),
            ));
        }
        Ok([m, n, c, h, w])
    }
}

impl Op for WeightedSum {
    fn name(&self) -> &'static str {
        "weighted_sum"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x", "weights"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let [_, n, c, h, w] = self.dims(inputs[0], inputs[1])?;
        Shape::new(&[n, c, h, w])
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [m, _, c, h, w] = self.dims(inputs[0].shape(), inputs[1].shape())?;
        let (x, weights, total, hw) = (inputs[0].data(), inputs[1].data(), shape.numel(), h * w);
        let out = (0..total)
            .map(|i| {
                let (n, k) = (i / hw / c, i / hw % c);
                let acc: f64 = (0..m).map(|b| weights[(n * m + b) * c + k] as f64 * x[b * total + i] as f64).sum();
                acc as f32
            })
            .collect();
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        expect_output(self, inputs, output)?;
        let op = self.name();
        let [m, n, c, h, w] = self.dims(inputs[0].shape(), inputs[1].shape())?;
        // The largest index the shader forms is into x (all branches).
        to_u32(op, "x element count", inputs[0].shape().numel())?;
        let params = WeightedSumParams {
            planes: to_u32(op, "N x C", n * c)?,
            m: to_u32(op, "M", m)?,
            c: to_u32(op, "C", c)?,
            hw: to_u32(op, "H x W", h * w)?,
        };
        // x along a plane's pixels; the planes folded into y and z.
        let [y, z, _] = gpu.grid_1d(op, (n * c) as u64)?;
        let grid = [params.hw.div_ceil(WORKGROUP), y, z];
        Ok(vec![gpu.prepare(&kernel!("weighted_sum"), &[], &params, &[inputs[0], inputs[1], output], grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let (x, weights) = (inputs[0].numel() as u64, inputs[1].numel() as u64);
        let out = x / inputs[0].dims()[0].max(1) as u64;
        // A multiply-add per branch element; read every branch and weight, write one map.
        Cost { flops: 2 * x, bytes: 4 * (x + weights + out) }
    }
}

/// Correctness cases: M = 2, 3, 4 over C in 1, 3, 65, maps 1 x 1 to 56 x 56,
/// batch 1 and 3, with softmax-like weights in [0, 1) and also signed ones.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    let shapes = [(2, [1, 1, 1, 1]), (3, [3, 3, 7, 7]), (4, [1, 65, 13, 17]), (2, [3, 65, 56, 56]), (4, [3, 3, 1, 1])];
    for (m, [n, c, h, w]) in shapes {
        let x = Tensor::random(Shape::new(&[m, n, c, h, w]).expect("case shapes are valid"), rng, -1.0, 1.0);
        let weights = Tensor::random(Shape::new(&[n, m, c]).expect("valid"), rng, 0.0, 1.0);
        cases.push(Case::new(format!("M = {m}"), WeightedSum, vec![x, weights]));
    }
    let x = Tensor::random(Shape::new(&[3, 3, 65, 13, 17]).expect("valid"), rng, -1.0, 1.0);
    let weights = Tensor::random(Shape::new(&[3, 3, 65]).expect("valid"), rng, -2.0, 2.0);
    cases.push(Case::new("M = 3, signed weights", WeightedSum, vec![x, weights]));
    // 65537 planes: the plane index must fold from y into z.
    let x = Tensor::random(Shape::new(&[2, 1, 65537, 1, 1]).expect("valid"), rng, -1.0, 1.0);
    let weights = Tensor::random(Shape::new(&[1, 2, 65537]).expect("valid"), rng, 0.0, 1.0);
    cases.push(Case::new("M = 2, 65537 planes", WeightedSum, vec![x, weights]));
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
        let x = shape(&[2, 3, 4, 5, 6]);
        let err = WeightedSum.output_shape(&[&shape(&[3, 4, 5, 6]), &shape(&[3, 2, 4])]).unwrap_err().to_string();
        assert!(
            err.contains("weighted_sum") && err.contains("M x N x C x H x W") && err.contains("[3 x 4 x 5 x 6]"),
            "{err}"
        );
        for bad in [[3, 3, 4], [2, 3, 4], [3, 2, 5]] {
            let err = WeightedSum.output_shape(&[&x, &shape(&bad)]).unwrap_err().to_string();
            assert!(err.contains("[2 x 3 x 4 x 5 x 6]") && err.contains(&shape(&bad).to_string()), "{err}");
        }
        assert!(WeightedSum.output_shape(&[&x, &shape(&[3, 2, 4, 1])]).is_err());
        let err = WeightedSum.output_shape(&[&x]).unwrap_err().to_string();
        assert!(err.contains("weighted_sum") && err.contains("expects 2 inputs"), "{err}");
        assert_eq!(WeightedSum.output_shape(&[&x, &shape(&[3, 2, 4])]).unwrap().dims(), &[3, 4, 5, 6]);
    }

    #[test]
    fn reference_weights_each_branch_per_channel() {
        // M = 2, N = 1, C = 2, one pixel: out[c] = w[0, 0, c] x[0, c] + w[0, 1, c] x[1, c].
        let x = Tensor::from_vec(&[2, 1, 2, 1, 1], vec![1.0, 2.0, 10.0, 20.0]).unwrap();
        let weights = Tensor::from_vec(&[1, 2, 2], vec![0.5, 0.25, 0.5, 0.75]).unwrap();
        let y = WeightedSum.reference(&[&x, &weights]).unwrap();
        assert_eq!(y.shape().dims(), &[1, 2, 1, 1]);
        assert_eq!(y.data(), &[5.5, 15.5]);
    }
}
