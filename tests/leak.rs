//! Resident memory across repeated submits of the same prepared dispatches: it must not grow.
//! One test in this binary, so nothing else allocates in the process while it measures.
//!
//! The regression it guards: lavapipe (Mesa 22.3) inlines a uniform that bounds a loop with a
//! constant start and step, recompiles the shader with its value at every dispatch and keeps
//! each compiled copy until the pipeline is destroyed, unless the first dispatch's copy came out
//! small enough to give up inlining. attention_rows' channel loop `d < params.d` did this: about
//! 300 KB per dispatch at D = 8, so `glimpse map` grew by half a megabyte per batch. Since then
//! glimpse binds every kernel's parameters as a storage buffer on lavapipe (src/gpu/params.rs),
//! which it never inlines: [`a_kernel_of_the_leaking_shape`] holds that mechanism to account
//! with a kernel written to leak, whatever the real kernels' loops look like.

mod common;

use glimpse::blocks::BuildOptions;
use glimpse::gpu::{Gpu, GpuOptions, Kernel, ParamsBinding};
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

/// Resident memory growth over SUBMITS calls of `submit` after a warm-up, or None where it
/// cannot be read.
fn growth(what: &str, mut submit: impl FnMut()) -> Option<u64> {
    for _ in 0..5 {
        submit();
    }
    let Some(start) = resident_bytes() else {
        eprintln!("SKIPPED: no /proc/self/statm to read resident memory from");
        return None;
    };
    for _ in 0..SUBMITS {
        submit();
    }
    let end = resident_bytes().expect("read above");
    eprintln!("{what}: resident {start} -> {end} bytes over {SUBMITS} submits");
    Some(end.saturating_sub(start))
}

/// Calls `submit` SUBMITS times after a warm-up and fails naming `what` if memory grew.
fn assert_flat(what: &str, submit: impl FnMut()) {
    let Some(growth) = growth(what, submit) else { return };
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

/// A 512 x 512 x 512 matmul (the kernel `auto` picks: matmul_subgroup where the device has
/// subgroups) as the first dispatch of its pipeline, on a device of its own: with a uniform,
/// lavapipe 22.3 compiled it again at every submit (613 ms each without Mesa's shader cache,
/// 4 extra compiles in `glimpse bench`'s calibration), though not when the first dispatch was
/// smaller.
fn matmul_512_on_a_fresh_device(rng: &mut fastrand::Rng) {
    let gpu = Gpu::new().expect("the test device opened, so another opens");
    let op = Matmul::new(false, false);
    let a = gpu.upload(&Tensor::random(Shape::new(&[1, 512, 512]).unwrap(), rng, -1.0, 1.0)).unwrap();
    let b = gpu.upload(&Tensor::random(Shape::new(&[1, 512, 512]).unwrap(), rng, -1.0, 1.0)).unwrap();
    let out = gpu.empty(&op.output_shape(&[a.shape(), b.shape()]).unwrap()).unwrap();
    let dispatches = op.encode(&gpu, &[&a, &b], &out).unwrap();
    assert_flat("matmul (auto) 512x512x512", || gpu.submit(&dispatches).unwrap());
}

/// A kernel of the shape lavapipe inlines and keeps inlining (Mesa 22.3.6: one llvmpipe
/// compile per submit at D = 1 to 16): a loop bounded by a parameter alone, with a constant
/// start and step, inside a larger shader.
const LEAKING_SHAPE: Kernel = Kernel {
    name: "leaking_shape",
    source: r#"
struct Params { d: u32, n: u32, _pad0: u32, _pad1: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var best = -1e30;
    var total = 0.0;
    for (var i = lid; i < params.n; i += 64u) {
        var acc = 0.0;
        for (var d = 0u; d < params.d; d++) { // the shape: a parameter alone bounds it
            let v = x[d * params.n + i];
            acc += v * x[(d + 1u) * params.n + i] + exp(-abs(v));
        }
        best = max(best, acc);
        total += exp(acc - best) + sqrt(abs(acc));
    }
    if (gid.x < params.n) {
        out[gid.x] = best + log(total + 1.0) * 0.5 + tanh(best) - atan2(total, best + 2.0);
    }
}
"#,
};

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct LeakingShapeParams {
    d: u32,
    n: u32,
    _pad: [u32; 2],
}

/// Memory growth of [`LEAKING_SHAPE`] at D = 8 submitted repeatedly on a fresh device taking
/// its parameters as `params` says (None: the device's own choice).
fn leaking_shape_growth(params: Option<ParamsBinding>, rng: &mut fastrand::Rng) -> Option<u64> {
    let gpu = Gpu::with_options(GpuOptions { params, ..Default::default() }).expect("the test device opened");
    let (d, n) = (8, 256);
    let x = gpu.upload(&Tensor::random(Shape::new(&[d + 1, n]).unwrap(), rng, -1.0, 1.0)).unwrap();
    let out = gpu.empty(&Shape::new(&[n]).unwrap()).unwrap();
    let p = LeakingShapeParams { d: d as u32, n: n as u32, _pad: [0; 2] };
    let dispatch = gpu.prepare(&LEAKING_SHAPE, &[], &p, &[&x, &out], [n as u32 / 64, 1, 1]).unwrap();
    let what = format!("the leaking shape, parameters in {:?}", gpu.params_binding());
    growth(&what, || gpu.submit(std::slice::from_ref(&dispatch)).unwrap())
}

/// The mechanism itself: where the driver leaks with the parameters in a uniform (the
/// control), the device's own choice must not. Elsewhere there is nothing to guard.
fn a_kernel_of_the_leaking_shape(rng: &mut fastrand::Rng) {
    let Some(control) = leaking_shape_growth(Some(ParamsBinding::Uniform), rng) else { return };
    if control <= 4 * ALLOWED {
        eprintln!(
            "this driver does not keep recompiling the leaking shape with its parameters in a uniform \
             ({} KB over {SUBMITS} submits): nothing to guard",
            control >> 10
        );
        return;
    }
    let Some(chosen) = leaking_shape_growth(None, rng) else { return };
    assert!(
        chosen <= ALLOWED,
        "a kernel whose loop is bounded by a parameter grew memory by {:.1} MiB over {SUBMITS} submits with the \
         parameters as this device takes them (in a uniform: {:.1} MiB): the driver compiles a shader per \
         dispatch; src/gpu/params.rs must keep parameters out of uniforms here",
        chosen as f64 / 1048576.0,
        control as f64 / 1048576.0
    );
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
    matmul_512_on_a_fresh_device(&mut rng);
    a_kernel_of_the_leaking_shape(&mut rng);
}
