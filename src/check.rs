//! Cross-checking GPU results against the CPU references: the comparison rule,
//! the tolerances (the only place they live) and running a [`Case`].

pub mod export;

use crate::gpu::{Dispatch, Gpu, GpuTensor};
use crate::ops::{gpu_shapes_of, shapes_of, Case};
use crate::{Result, Tensor};

/// How close a GPU result must be to the f64-accumulated CPU reference.
/// An element passes when `|got - want| <= rel * (|want| + rms(want))`: relative
/// to the element, with the tensor's RMS as the floor so that values that cancel
/// to nearly zero are judged against the magnitude of the terms that made them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative error allowed.
    pub rel: f64,
}

/// Single ops in f32.
pub const OP_TOLERANCE: Tolerance = Tolerance { rel: 1e-5 };
/// Whole blocks against PyTorch: relative L2 error of the output.
pub const BLOCK_REL_L2: f64 = 1e-4;

/// How a result compares with its reference.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// Largest |got - want|.
    pub max_abs: f64,
    /// Largest error as a multiple of what the tolerance allows (<= 1 passes).
    pub worst: f64,
    /// Index of the worst element.
    pub worst_index: usize,
    /// ||got - want|| / ||want||.
    pub rel_l2: f64,
    /// Whether every element was within tolerance (NaN never is).
    pub passed: bool,
}

/// Compares `got` with `want` element by element.
pub fn compare(got: &Tensor, want: &Tensor, tol: Tolerance) -> Comparison {
    let (g, w) = (got.data(), want.data());
    let same_shape = got.shape() == want.shape();
    let n = w.len().max(1) as f64;
    let sum_sq: f64 = w.iter().map(|&v| (v as f64).powi(2)).sum();
    let rms = (sum_sq / n).sqrt();
    let (mut max_abs, mut worst, mut worst_index, mut diff_sq) = (0.0f64, 0.0f64, 0usize, 0.0f64);
    for (i, (&a, &b)) in g.iter().zip(w).enumerate() {
        // NaN (an unwritten, poisoned element) scores infinitely bad.
        let d = (a as f64 - b as f64).abs();
        let d = if d.is_nan() { f64::INFINITY } else { d };
        let allowed = tol.rel * ((b as f64).abs() + rms);
        let score = if d == 0.0 { 0.0 } else { d / allowed };
        if score > worst {
            (worst, worst_index) = (score, i);
        }
        max_abs = max_abs.max(d);
        diff_sq += d * d;
    }
    let rel_l2 = if sum_sq > 0.0 { (diff_sq / sum_sq).sqrt() } else { diff_sq.sqrt() };
    Comparison { max_abs, worst, worst_index, rel_l2, passed: same_shape && worst <= 1.0 }
}

/// One case's outcome.
#[derive(Clone, Debug)]
pub struct CaseReport {
    /// Op name.
    pub op: &'static str,
    /// The case label.
    pub label: String,
    /// Input shapes, for the report.
    pub shapes: String,
    /// How the GPU compared with the reference.
    pub comparison: Comparison,
}

/// Runs `case` on the CPU reference and on `gpu` (output poisoned with NaN
/// first, so an element the kernel forgets to write fails) and compares.
pub fn run_case(gpu: &Gpu, case: &Case) -> Result<CaseReport> {
    let inputs: Vec<&Tensor> = case.inputs.iter().collect();
    let out_shape = case.op.output_shape(&shapes_of(&inputs))?;
    let uploaded = inputs.iter().map(|t| gpu.upload(t)).collect::<Result<Vec<_>>>()?;
    let bound: Vec<_> = uploaded.iter().collect();
    let output = gpu.empty(&out_shape)?;
    gpu.fill(&output, f32::NAN)?;
    // The case's pipelines compile on worker threads while the CPU reference runs.
    let (dispatches, want) =
        gpu.compiling_in_parallel(|| (encode_case(gpu, case, &bound, &output), case.op.reference(&inputs)));
    // (A reference of another shape than the rule's fails the comparison: `compare` checks shapes.)
    let (dispatches, want) = (dispatches?, want?);
    gpu.submit(&dispatches)?;
    let got = gpu.read(&output)?;
    let shapes: Vec<String> = gpu_shapes_of(&bound).iter().map(|s| s.to_string()).collect();
    Ok(CaseReport {
        op: case.op.name(),
        label: case.label.clone(),
        shapes: shapes.join(", "),
        comparison: compare(&got, &want, OP_TOLERANCE),
    })
}

/// The dispatches of `case` on `gpu`, folding grids at the case's grid limit where it has one
/// (they run on `gpu` like any other: the folding view shares its device).
pub fn encode_case(gpu: &Gpu, case: &Case, inputs: &[&GpuTensor], output: &GpuTensor) -> Result<Vec<Dispatch>> {
    match case.grid_limit {
        Some(limit) => case.op.encode(&gpu.with_grid_limit(limit)?, inputs, output),
        None => case.op.encode(gpu, inputs, output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_catches_nan_and_small_errors() {
        let want = Tensor::from_vec(&[3], vec![1.0, -2.0, 0.5]).unwrap();
        assert!(compare(&want, &want, OP_TOLERANCE).passed);
        let nan = Tensor::from_vec(&[3], vec![1.0, f32::NAN, 0.5]).unwrap();
        assert!(!compare(&nan, &want, OP_TOLERANCE).passed);
        let off = Tensor::from_vec(&[3], vec![1.0, -2.001, 0.5]).unwrap();
        let c = compare(&off, &want, OP_TOLERANCE);
        assert!(!c.passed && c.worst_index == 1, "{c:?}");
        let shape = Tensor::from_vec(&[1, 3], vec![1.0, -2.0, 0.5]).unwrap();
        assert!(!compare(&shape, &want, OP_TOLERANCE).passed);
    }
}
