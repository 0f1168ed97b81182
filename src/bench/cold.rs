//! The cold start's compile cost: which pipelines a workload was the first to use.

use super::report::{Compile, Row};
use crate::gpu::Gpu;

/// How many pipelines the device has compiled so far: pass it to [`record_compiles`]
/// after the cold run.
pub(super) fn compiled_so_far(gpu: &Gpu) -> usize {
    gpu.pipeline_compiles().len()
}

/// Fills `row`'s compile fields with the pipelines compiled since `before`.
pub(super) fn record_compiles(row: &mut Row, gpu: &Gpu, before: usize) {
    row.compiles = gpu
        .pipeline_compiles()
        .into_iter()
        .skip(before)
        .map(|c| Compile { pipeline: c.label(), create_ms: c.create_ms, first_run_ms: c.first_run_ms })
        .collect();
    row.compile_ms = Some(row.compiles.iter().map(Compile::total_ms).fold(0.0, |a, b| a + b));
}
