//! eltwise: elementwise add, ReLU, add followed by ReLU, and sigmoid.

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Error, Result, Shape, Tensor};

/// Which elementwise function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eltwise {
    /// a + b.
    Add,
    /// max(x, 0).
    Relu,
    /// max(a + b, 0): a residual join.
    AddRelu,
    /// 1 / (1 + exp(-x)).
    Sigmoid,
}

/// Mirrors `struct Params` in shaders/eltwise.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct EltwiseParams {
    n: u32,
    kind: u32,
    _pad: [u32; 2],
}

const WORKGROUP: u64 = 256;

impl Eltwise {
    fn kind(self) -> u32 {
        match self {
            Eltwise::Add => 0,
            Eltwise::Relu => 1,
            Eltwise::AddRelu => 2,
            Eltwise::Sigmoid => 3,
        }
    }

    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Eltwise::Add => a + b,
            Eltwise::Relu => a.max(0.0),
            Eltwise::AddRelu => (a + b).max(0.0),
            Eltwise::Sigmoid => super::sigmoid(a as f64) as f32,
        }
    }

    /// Whether the op reads one input (`x`) rather than two (`a`, `b`).
    pub fn unary(self) -> bool {
        matches!(self, Eltwise::Relu | Eltwise::Sigmoid)
    }
}

impl Op for Eltwise {
    fn name(&self) -> &'static str {
        "eltwise"
    }

    fn input_names(&self) -> Vec<&'static str> {
        if self.unary() {
            vec!["x"]
        } else {
            vec!["a", "b"]
        }
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        if let [a, b] = inputs {
            if a != b {
                return Err(Error::invalid(self.name(), format!("{self:?} needs equal shapes, got a {a} and b {b}")));
            }
        }
        Ok(inputs[0].clone())
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let a = inputs[0].data();
        let b = inputs.get(1).map_or(a, |t| t.data());
        Tensor::new(shape, a.iter().zip(b).map(|(&x, &y)| self.apply(x, y)).collect())
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        let shape = expect_output(self, inputs, output)?;
        let n = shape.numel();
        let params = EltwiseParams { n: to_u32(self.name(), "element count", n)?, kind: self.kind(), _pad: [0; 2] };
        let b = inputs.get(1).unwrap_or(&inputs[0]);
        let grid = gpu.grid_1d(self.name(), (n as u64).div_ceil(WORKGROUP))?;
        Ok(vec![gpu.prepare(&kernel!("eltwise"), &[], &params, &[inputs[0], b, output], grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let n = inputs[0].numel() as u64;
        let flops = match self {
            Eltwise::Add | Eltwise::Relu => n,
            Eltwise::AddRelu => 2 * n,
            // Negate, exp, add, divide.
            Eltwise::Sigmoid => 4 * n,
        };
        Cost { flops, bytes: 4 * n * (inputs.len() as u64 + 1) }
    }
}

/// Correctness cases: odd sizes, and a folded grid.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for dims in [vec![1usize], vec![3, 65, 13, 17], vec![2, 3, 56, 56]] {
        let shape = Shape::new(&dims).expect("case shapes are valid");
        let a = Tensor::random(shape.clone(), rng, -1.0, 1.0);
        let b = Tensor::random(shape, rng, -1.0, 1.0);
        cases.push(Case::new("add", Eltwise::Add, vec![a.clone(), b.clone()]));
        cases.push(Case::new("relu", Eltwise::Relu, vec![a.clone()]));
        cases.push(Case::new("sigmoid", Eltwise::Sigmoid, vec![a.clone()]));
        cases.push(Case::new("add+relu", Eltwise::AddRelu, vec![a, b]));
    }
    // Logits of +-400: exactly 0 or 1, never NaN.
    let mut x = random_input(rng, &[3, 5, 7], -1.0, 1.0);
    x.data_mut().iter_mut().for_each(|v| *v *= 400.0);
    cases.push(Case::new("sigmoid of +-400", Eltwise::Sigmoid, vec![x]));
    // SMALL_GRID x 256 elements fill the first grid row; one more folds into y.
    let x = random_input(rng, &[SMALL_GRID as usize * 256 + 1], -1.0, 1.0);
    cases.push(Case::new("relu, folded grid", Eltwise::Relu, vec![x]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_shapes_are_rejected() {
        let a = Shape::new(&[2, 3]).unwrap();
        let b = Shape::new(&[3, 2]).unwrap();
        let err = Eltwise::Add.output_shape(&[&a, &b]).unwrap_err().to_string();
        assert!(err.contains("eltwise") && err.contains("[2 x 3]") && err.contains("[3 x 2]"), "{err}");
        assert!(Eltwise::Relu.output_shape(&[&a, &b]).is_err());
    }

    #[test]
    fn reference_adds_then_clamps() {
        let a = Tensor::from_vec(&[3], vec![1.0, -2.0, 0.5]).unwrap();
        let b = Tensor::from_vec(&[3], vec![1.0, 1.0, -1.0]).unwrap();
        let y = Eltwise::AddRelu.reference(&[&a, &b]).unwrap();
        assert_eq!(y.data(), &[2.0, 0.0, 0.0]);
    }
}
