//! softmax: max-subtracted softmax along one axis of a tensor of any rank
//! (SK's attention across branches, Non-local attention rows).

use super::{expect_inputs, expect_output, random_input, shapes_of, to_u32, Case, Cost, Op, SMALL_GRID};
use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::{kernel, Error, Result, Shape, Tensor};

/// Input `x` of any rank -> softmax along `axis`, shaped like x.
///
/// The tensor is viewed as [outer, len, inner] around the axis; the kernel is
/// chosen as [`SoftmaxKernel::Auto`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softmax {
    /// The axis normalised over (0-based).
    pub axis: usize,
}

/// Which kernel computes a softmax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SoftmaxKernel {
    /// What [`crate::ops::choose::softmax`] picks for the device and the shape.
    #[default]
    Auto,
    /// One invocation per (outer, inner) looping over the axis (softmax.wgsl):
    /// coalesced when inner > 1, barrier-free.
    Serial,
    /// One 64-invocation workgroup per contiguous row with tree reductions
    /// (softmax_row.wgsl): coalesced for inner == 1. Needs the axis to be the
    /// last non-1 dimension.
    Row,
}

/// A [`Softmax`] with its kernel pinned: benchmarks and the cases use it to
/// cross-check both kernels on any device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinnedSoftmax {
    /// The softmax.
    pub softmax: Softmax,
    /// The kernel that computes it.
    pub kernel: SoftmaxKernel,
}

/// Mirrors `struct Params` in shaders/softmax.wgsl and softmax_row.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SoftmaxParams {
    outer: u32,
    len: u32,
    inner: u32,
    _pad: u32,
}

/// Invocations per workgroup of the serial kernel.
const SERIAL_WORKGROUP: u64 = 64;

impl Softmax {
    /// This softmax computed by `kernel`.
    pub fn pinned(self, kernel: SoftmaxKernel) -> PinnedSoftmax {
        PinnedSoftmax { softmax: self, kernel }
    }

    /// [outer, len, inner] for `shape`, or an error when the axis is out of range.
    fn view(&self, shape: &Shape) -> Result<[usize; 3]> {
        let dims = shape.dims();
        if self.axis >= dims.len() {
            return Err(Error::invalid(
                "softmax",
                format!("axis {} is out of range for x {shape} of rank {}", self.axis, dims.len()),
            ));
        }
        let outer = dims[..self.axis].iter().product();
        let inner = dims[self.axis + 1..].iter().product();
        Ok([outer, dims[self.axis], inner])
    }
}

impl Op for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        self.pinned(SoftmaxKernel::Auto).output_shape(inputs)
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        self.pinned(SoftmaxKernel::Auto).reference(inputs)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        self.pinned(SoftmaxKernel::Auto).encode(gpu, inputs, output)
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        self.pinned(SoftmaxKernel::Auto).cost(inputs)
    }
}

impl Op for PinnedSoftmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn input_names(&self) -> Vec<&'static str> {
        vec!["x"]
    }

    fn output_shape(&self, inputs: &[&Shape]) -> Result<Shape> {
        expect_inputs(self, inputs)?;
        let x = inputs[0];
        let [_, _, inner] = self.softmax.view(x)?;
        if self.kernel == SoftmaxKernel::Row && inner != 1 {
            return Err(Error::invalid(
                self.name(),
                format!(
                    "the row kernel needs contiguous rows, but x {x} has {inner} elements per step of axis {}",
                    self.softmax.axis
                ),
            ));
        }
        Ok(x.clone())
    }

    fn reference(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.output_shape(&shapes_of(inputs))?;
        let [outer, len, inner] = self.softmax.view(&shape)?;
        let x = inputs[0].data();
        let mut out = vec![0.0; x.len()];
        for o in 0..outer {
            for k in 0..inner {
                let at = |l: usize| (o * len + l) * inner + k;
                let m = (0..len).map(|l| x[at(l)] as f64).fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = (0..len).map(|l| (x[at(l)] as f64 - m).exp()).sum();
                for l in 0..len {
                    out[at(l)] = ((x[at(l)] as f64 - m).exp() / sum) as f32;
                }
            }
        }
        Tensor::new(shape, out)
    }

    fn encode(&self, gpu: &Gpu, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
        let shape = expect_output(self, inputs, output)?;
        let op = self.name();
        let [outer, len, inner] = self.softmax.view(&shape)?;
        // The largest index the shaders form is into x.
        to_u32(op, "x element count", shape.numel())?;
        let params = SoftmaxParams {
            outer: to_u32(op, "outer size", outer)?,
            len: to_u32(op, "axis length", len)?,
            inner: to_u32(op, "inner size", inner)?,
            _pad: 0,
        };
        let kernel = match self.kernel {
            SoftmaxKernel::Auto => super::choose::softmax(gpu.profile(), inner, len),
            k => k,
        };
        // output_shape (through expect_output) rejected Row for inner != 1.
        let (kernel, grid) = match kernel {
            SoftmaxKernel::Row => (kernel!("softmax_row"), gpu.grid_1d(op, outer as u64)?),
            _ => (kernel!("softmax"), gpu.grid_1d(op, ((outer * inner) as u64).div_ceil(SERIAL_WORKGROUP))?),
        };
        Ok(vec![gpu.prepare(&kernel, &[], &params, &[inputs[0], output], grid)?])
    }

    fn cost(&self, inputs: &[&Shape]) -> Cost {
        let n = inputs[0].numel() as u64;
        // Per element: a max, a subtract and exp, an add, a divide (exp counted once).
        Cost { flops: 5 * n, bytes: 8 * n }
    }
}

/// `shape` filled with uniform values in [-4, 4) plus `offset`.
fn random(dims: &[usize], rng: &mut fastrand::Rng, offset: f32) -> Tensor {
    random_input(rng, dims, offset - 4.0, offset + 4.0)
}

/// Correctness cases: axis first, middle and last; SK's [N, M, C] over M = 2, 3, 4;
/// Non-local rows up to 3136 long (both kernels); rows offset by 1e4; rows
/// with one spike 80 above the rest.
pub fn cases(rng: &mut fastrand::Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    // Contiguous rows run on both kernels; everything else on the serial one.
    let mut add = |label: &str, axis: usize, x: Tensor| {
        let softmax = Softmax { axis };
        let rows = softmax.view(x.shape()).expect("case axes are valid")[2] == 1;
        if rows {
            cases.push(Case::new(format!("{label}, row"), softmax.pinned(SoftmaxKernel::Row), vec![x.clone()]));
        }
        cases.push(Case::new(format!("{label}, serial"), softmax.pinned(SoftmaxKernel::Serial), vec![x]));
    };
    for m in [2, 3, 4] {
        add(&format!("SK branches, M = {m}"), 1, random(&[3, m, 65], rng, 0.0));
    }
    add("axis 0", 0, random(&[7, 13, 3], rng, 0.0));
    add("middle axis", 2, random(&[3, 5, 13, 17], rng, 0.0));
    add("last axis", 3, random(&[3, 5, 13, 17], rng, 0.0));
    add("rank 1", 0, random(&[65], rng, 0.0));
    add("length 1", 1, random(&[3, 1, 5], rng, 0.0));
    for (hw, rows) in [(49, 49), (255, 13), (256, 7), (3136, 37)] {
        add(&format!("rows of {hw}"), 2, random(&[3, rows, hw], rng, 0.0));
    }
    add("offset 1e4, short rows", 2, random(&[3, 7, 65], rng, 1e4));
    add("offset 1e4, long rows", 1, random(&[5, 3136], rng, 1e4));
    add("offset 1e4, branches", 1, random(&[3, 3, 65], rng, 1e4));
    for (dims, axis) in [(vec![3, 7, 65], 2), (vec![3, 3136], 1), (vec![3, 4, 65], 1)] {
        let mut x = random(&dims, rng, 0.0);
        let [outer, len, inner] = Softmax { axis }.view(x.shape()).expect("valid");
        for o in 0..outer {
            for k in 0..inner {
                // One element per softmax 80 above the rest: the others' terms fall to
                // exp(-88) at worst, a denormal that may flush to 0 (allowed: tiny).
                x.data_mut()[(o * len + rng.usize(..len)) * inner + k] += 80.0;
            }
        }
        add(&format!("spike +80, axis {axis}"), axis, x);
    }
    // Past SMALL_GRID workgroups the grid folds into y: the row kernel takes a row per
    // workgroup, the serial one SERIAL_WORKGROUP softmaxes.
    let softmax = Softmax { axis: 1 };
    let x = random(&[SMALL_GRID as usize + 1, 5], rng, 0.0);
    cases.push(Case::new("folded grid, row", softmax.pinned(SoftmaxKernel::Row), vec![x]).with_grid_limit(SMALL_GRID));
    let x = random(&[SMALL_GRID as usize * SERIAL_WORKGROUP as usize + 1, 3], rng, 0.0);
    let serial = softmax.pinned(SoftmaxKernel::Serial);
    cases.push(Case::new("folded grid, serial", serial, vec![x]).with_grid_limit(SMALL_GRID));
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_rejected() {
        let x = Shape::new(&[2, 3, 4]).unwrap();
        let err = Softmax { axis: 3 }.output_shape(&[&x]).unwrap_err().to_string();
        assert!(err.contains("softmax") && err.contains("axis 3") && err.contains("[2 x 3 x 4]"), "{err}");
        let err = Softmax { axis: 0 }.output_shape(&[&x, &x]).unwrap_err().to_string();
        assert!(err.contains("softmax") && err.contains("expects 1 inputs"), "{err}");
        assert!(Softmax { axis: 0 }.output_shape(&[]).is_err());
        assert_eq!(Softmax { axis: 1 }.view(&x).unwrap(), [2, 3, 4]);
        let err = Softmax { axis: 1 }.pinned(SoftmaxKernel::Row).output_shape(&[&x]).unwrap_err().to_string();
        assert!(err.contains("softmax") && err.contains("row kernel") && err.contains("[2 x 3 x 4]"), "{err}");
        assert!(Softmax { axis: 2 }.pinned(SoftmaxKernel::Row).output_shape(&[&x]).is_ok());
    }

    #[test]
    fn reference_normalises_along_the_axis() {
        // [2, 2] over axis 0: columns (0, ln 3) and (5, 5) -> (1/4, 3/4) and (1/2, 1/2).
        let x = Tensor::from_vec(&[2, 2], vec![0.0, 5.0, 3f32.ln(), 5.0]).unwrap();
        let y = Softmax { axis: 0 }.reference(&[&x]).unwrap();
        for (got, want) in y.data().iter().zip([0.25, 0.5, 0.75, 0.5]) {
            assert!((got - want).abs() < 1e-6, "{:?}", y.data());
        }
        // A 1e4 offset changes nothing (max subtraction).
        let x = Tensor::from_vec(&[1, 2], vec![1e4, 1e4]).unwrap();
        assert_eq!(Softmax { axis: 1 }.reference(&[&x]).unwrap().data(), &[0.5, 0.5]);
    }
}
