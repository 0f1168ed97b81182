//! CPU tensors: contiguous row-major f32 with a checked shape.

use crate::{ensure, Error, Result};
use std::fmt;

/// Dimensions of a contiguous row-major tensor (NCHW for images).
/// Every dimension is at least 1 and the element count fits in u64 and usize.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    dims: Vec<usize>,
    numel: usize,
}

impl Shape {
    /// A shape from its dimensions; rejects zero-sized dimensions and overflow.
    pub fn new(dims: &[usize]) -> Result<Shape> {
        ensure!(!dims.is_empty(), "shape", "a tensor needs at least one dimension");
        ensure!(dims.iter().all(|&d| d > 0), "shape", "zero-sized dimension in {dims:?}");
        let numel = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| Error::invalid("shape", format!("{dims:?} has more elements than fit in memory")))?;
        Ok(Shape { dims: dims.to_vec(), numel })
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Size in bytes as f32 (checked: fits because numel fits in usize on 64-bit hosts).
    pub fn bytes(&self) -> u64 {
        self.numel as u64 * 4
    }

    /// The four dimensions of an N x C x H x W tensor, or an error naming `op` and `name`.
    pub fn nchw(&self, op: &str, name: &str) -> Result<[usize; 4]> {
        match self.dims[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(Error::invalid(op, format!("{name} must be N x C x H x W, got {self}"))),
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.dims.iter().map(|d| d.to_string()).collect();
        write!(f, "[{}]", parts.join(" x "))
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A CPU tensor: a shape and its elements in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: Vec<f32>,
}

impl Tensor {
    /// A tensor from a shape and matching data.
    pub fn new(shape: Shape, data: Vec<f32>) -> Result<Tensor> {
        ensure!(
            data.len() == shape.numel(),
            "tensor",
            "shape {shape} needs {} elements, got {}",
            shape.numel(),
            data.len()
        );
        Ok(Tensor { shape, data })
    }

    /// A tensor from dimensions and data.
    pub fn from_vec(dims: &[usize], data: Vec<f32>) -> Result<Tensor> {
        Tensor::new(Shape::new(dims)?, data)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Shape) -> Tensor {
        let data = vec![0.0; shape.numel()];
        Tensor { shape, data }
    }

    /// A tensor filled with `value`.
    pub fn full(shape: Shape, value: f32) -> Tensor {
        let data = vec![value; shape.numel()];
        Tensor { shape, data }
    }

    /// Uniform random values in [lo, hi) from `rng`.
    pub fn random(shape: Shape, rng: &mut fastrand::Rng, lo: f32, hi: f32) -> Tensor {
        let data = (0..shape.numel()).map(|_| lo + (hi - lo) * rng.f32()).collect();
        Tensor { shape, data }
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor, returning its elements.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// The same elements under another shape with the same element count.
    pub fn reshape(self, dims: &[usize]) -> Result<Tensor> {
        let shape = Shape::new(dims)?;
        ensure!(shape.numel() == self.shape.numel(), "reshape", "cannot view {} as {shape}", self.shape);
        Ok(Tensor { shape, data: self.data })
    }
}
