//! Resident memory across repeated submits of the same prepared dispatches: it must not grow.
//! One test in this binary, so nothing else allocates in the process while it measures.
//!
//! The regression it guards: lavapipe (Mesa 22.3) inlines a uniform that bounds a loop with a
//! constant start and step, recompiles the shader with its value at every dispatch and keeps
//! each compiled copy until the pipeline is destroyed, unless the first dispatch's copy came out
//! small enough to give up inlining. attention_rows' channel loop `d < params.d` did this: about
//! 300 KB per dispatch at D = 8, so `glimpse map` grew by half a megabyte per batch.

mod common;

use glimpse::blocks::BuildOptions;
use glimpse::gpu::Gpu;
use glimpse::graph::{Fusion, Plan, Tensors};
use glimpse::models::Model;
use glimpse::ops::attention_rows::AttentionRows;
use glimpse::ops::matmul::{Matmul, Variant};
use glimpse::ops::{Activation, Epilogue, Op};
use glimpse::{Shape, Tensor};
use std::path::Path;

/// Resident bytes of this process (Linux /proc), or None elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Submits: enough for a growth of 100 KB per submit to stand far above allocator noise.
const SUBMITS: usize = 60;
/// Growth allowed over SUBMITS submits (a leak like the one above: 18 MiB and more).
const ALLOWED: u64 = 3 << 20;

/// Calls `submit` SUBMITS times after a warm-up and fails naming `what` if memory grew.
fn assert_flat(what: &str, mut submit: impl FnMut()) {
    for _ in 0..5 {
        submit();
    }
    let Some(start) = resident_bytes() else {
        eprintln!("SKIPPED: no /proc/self/statm to read resident memory from");
        return;
    };
    for _ in 0..SUBMITS {
        submit();
    }
    let end = resident_bytes().expect("read above");
    let growth = end.saturating_sub(start);
    eprintln!("{what}: resident {start} -> {end} bytes over {SUBMITS} submits");
    assert!(
        growth <= ALLOWED,
        "{what}: resident memory grew by {:.1} MiB over {SUBMITS} submits of the same dispatches ({} KB each)",
        growth as f64 / 1048576.0,
        growth / SUBMITS as u64 / 1024
    );
}

/// One attention_rows launch over D channels of a 14 x 14 grid, on a device of its own: the
/// first dispatch of a pipeline decides whether lavapipe keeps inlining, so each D needs a new
/// pipeline.
fn attention_rows_on_a_fresh_device(d: usize, rng: &mut fastrand::Rng) {
    let gpu = Gpu::new().expect("the test device opened, so another opens");
    let op = AttentionRows { scale: 0.5, queries: vec![98] };
    let theta = Tensor::random(Shape::new(&[1, d, 196]).unwrap(), rng, -1.0, 1.0);
    let phi = Tensor::random(Shape::new(&[1, d, 196]).unwrap(), rng, -1.0, 1.0);
    let (theta, phi) = (gpu.upload(&theta).unwrap(), gpu.upload(&phi).unwrap());
    let out = gpu.empty(&Shape::new(&[1, 1, 196]).unwrap()).unwrap();
    let dispatches = op.encode(&gpu, &[&theta, &phi], &out).unwrap();
    assert_flat(&format!("attention_rows, D = {d}"), || gpu.submit(&dispatches).unwrap());
}

/// The register-tiled matmul (the kernel for layouts without whole vec4 rows) as a 1 x 1 conv
/// with a folded BatchNorm and ReLU, on a device of its own: its k loop and epilogue tests
/// once hung on uniforms alone and leaked the same way (about 1 MB per dispatch at full width).
fn tiled_matmul_on_a_fresh_device(m: usize, k: usize, n: usize, rng: &mut fastrand::Rng) {
    let gpu = Gpu::new().expect("the test device opened, so another opens");
    let epilogue = Epilogue { affine: true, activation: Activation::Relu, residual: false };
    let op = Matmul::conv1x1(epilogue).with_variant(Variant::Tiled);
    let a = gpu.upload(&Tensor::random(Shape::new(&[1, m, k]).unwrap(), rng, -1.0, 1.0)).unwrap();
    let b = gpu.upload(&Tensor::random(Shape::new(&[1, k, n]).unwrap(), rng, -1.0, 1.0)).unwrap();
    let affine = gpu.upload(&Tensor::random(Shape::new(&[2, m]).unwrap(), rng, -1.0, 1.0)).unwrap();
    let shapes = [a.shape(), b.shape(), affine.shape()];
    let out = gpu.empty(&op.output_shape(&shapes).unwrap()).unwrap();
    let dispatches = op.encode(&gpu, &[&a, &b, &affine], &out).unwrap();
    assert_flat(&format!("matmul (tiled) {m}x{k}x{n} with BatchNorm and ReLU"), || gpu.submit(&dispatches).unwrap());
}

#[test]
fn repeated_submits_of_the_same_plan_do_not_grow_memory() {
    let gpu = gpu_or_skip!();
    let mut rng = common::rng();
    // The demo model's plan with its maps, as `glimpse map` runs it once per batch.
    let model = Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/model.safetensors")).unwrap();
    let graph = model.build(1, BuildOptions { fusion: Fusion::all(), maps: true, queries: vec![] }).unwrap();
    let plan = Plan::compile(gpu, &graph).unwrap();
    let [c, h, w] = model.spec.input;
    let feed =
        Tensors::from([("x".to_string(), Tensor::random(Shape::new(&[1, c, h, w]).unwrap(), &mut rng, -1.0, 1.0))]);
    assert_flat("the demo plan with its maps", || {
        plan.run(gpu, &feed).unwrap();
    });
    for d in [2, 8, 32] {
        attention_rows_on_a_fresh_device(d, &mut rng);
    }
    for (m, k, n) in [(512, 2048, 49), (2048, 512, 49)] {
        tiled_matmul_on_a_fresh_device(m, k, n, &mut rng);
    }
}
