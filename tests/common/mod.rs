//! Shared by the GPU test files: one device per test binary, the skip rule,
//! seeded randomness, and running cases against the CPU references.
#![allow(dead_code)] // each test binary uses a different part

use glimpse::check::run_case;
use glimpse::gpu::Gpu;
use glimpse::ops::{random_input, Case};
use glimpse::tensorfile::TensorFile;
use std::sync::OnceLock;

/// The test device, or None (with the reason printed) when there is no adapter.
/// With GLIMPSE_REQUIRE_GPU=1 (set by CI) a missing adapter fails the test.
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(gpu) => {
            eprintln!("GPU tests run on {}", gpu.adapter());
            Some(gpu)
        }
        Err(e) if std::env::var("GLIMPSE_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("GLIMPSE_REQUIRE_GPU=1 but no GPU could be opened: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: no GPU adapter ({e}); set GLIMPSE_REQUIRE_GPU=1 to make this a failure");
            None
        }
    })
    .as_ref()
}

/// Returns the test device, or returns from the test after printing why.
#[macro_export]
macro_rules! gpu_or_skip {
    () => {
        match common::gpu() {
            Some(gpu) => gpu,
            None => return,
        }
    };
}

/// The device's subgroup width where it has subgroups of one fixed width (the forced subgroup
/// kernels run only there), else None after printing that the test is skipped.
pub fn subgroup_width(gpu: &Gpu) -> Option<usize> {
    let width = gpu.profile().subgroup_width.map(|w| w as usize);
    if width.is_none() {
        eprintln!("skipped: {} has no subgroups of one fixed width", gpu.profile().name);
    }
    width
}

/// A fresh random generator; its seed is printed so a failure can be replayed
/// with GLIMPSE_SEED=<seed>.
pub fn rng() -> fastrand::Rng {
    let seed = std::env::var("GLIMPSE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("GLIMPSE_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// Runs every case on the GPU and the CPU reference; fails listing each mismatch.
pub fn check_cases(gpu: &Gpu, cases: Vec<Case>) {
    assert!(!cases.is_empty(), "no cases to check");
    let mut failures = Vec::new();
    for case in &cases {
        match run_case(gpu, case) {
            Ok(r) if r.comparison.passed => {}
            Ok(r) => failures.push(format!("{} [{}] on {}: {:?}", r.op, r.label, r.shapes, r.comparison)),
            Err(e) => failures.push(format!("{} [{}]: error: {e}", case.op.name(), case.label)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Random eval-mode BatchNorm statistics `{prefix}.weight|bias|running_mean|running_var` over `c`
/// channels (scale near 1, so activations stay of order 1).
pub fn batchnorm(file: &mut TensorFile, rng: &mut fastrand::Rng, prefix: &str, c: usize) {
    for (name, lo, hi) in
        [("weight", 0.8, 1.2), ("bias", -0.2, 0.2), ("running_mean", -0.2, 0.2), ("running_var", 0.5, 1.5)]
    {
        file.tensors.insert(format!("{prefix}.{name}"), random_input(rng, &[c], lo, hi));
    }
}
