//! Graphs and plans: the GPU plan agrees with the CPU executor, reuses dead
//! buffers, runs many times, and rejects bad feeds.

mod common;

use glimpse::check::{compare, OP_TOLERANCE};
use glimpse::gpu::Gpu;
use glimpse::graph::{Graph, Plan, Tensors};
use glimpse::ops::eltwise::Eltwise;
use glimpse::{Shape, Tensor};

/// y = relu(relu(x + c) + x) through a chain long enough to reuse buffers,
/// with a view in the middle.
fn chain(shape: &Shape, c: Tensor) -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", shape.clone());
    let c = g.constant(c);
    let mut v = g.add(Eltwise::Add, &[x, c]).unwrap();
    for _ in 0..4 {
        let r = g.add(Eltwise::Relu, &[v]).unwrap();
        v = g.add(Eltwise::AddRelu, &[r, x]).unwrap();
    }
    let flat = g.view(v, &[shape.numel()]).unwrap();
    let y = g.add(Eltwise::Relu, &[flat]).unwrap();
    g.output("y", y);
    g.output("middle", v);
    g
}

#[test]
fn a_plan_matches_the_cpu_executor_and_reuses_buffers() {
    let gpu = gpu_or_skip!();
    let mut rng = common::rng();
    let shape = Shape::new(&[2, 3, 13, 17]).unwrap();
    let graph = chain(&shape, Tensor::random(shape.clone(), &mut rng, -1.0, 1.0));
    let plan = Plan::compile(gpu, &graph).unwrap();
    assert_eq!(plan.dispatch_count(), 10);
    // 10 intermediates of one size would need 10 buffers; liveness needs far fewer.
    let one = shape.bytes();
    assert!(plan.activation_bytes() <= 5 * one, "{} bytes for {one}-byte tensors", plan.activation_bytes());
    for _ in 0..3 {
        let x = Tensor::random(shape.clone(), &mut rng, -1.0, 1.0);
        let feed = Tensors::from([("x".to_string(), x)]);
        let want = graph.run_cpu(&feed).unwrap();
        let got = plan.run(gpu, &feed).unwrap();
        for name in ["y", "middle"] {
            let c = compare(&got[name], &want[name], OP_TOLERANCE);
            assert!(c.passed, "{name}: {c:?}");
        }
    }
}

#[test]
fn the_compile_log_lists_every_pipeline_a_plan_uses_once_with_its_first_run() {
    let _shared = gpu_or_skip!();
    // A device of its own: the log starts empty.
    let gpu = Gpu::new().unwrap();
    let shape = Shape::new(&[2, 3, 5, 7]).unwrap();
    let graph = chain(&shape, Tensor::zeros(shape.clone()));
    let plan = Plan::compile(&gpu, &graph).unwrap();
    let mut used: Vec<String> = Vec::new();
    for d in plan.dispatches() {
        let r = d.recipe();
        let c: Vec<String> = r.constants.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let label =
            if c.is_empty() { r.kernel.name.to_string() } else { format!("{}[{}]", r.kernel.name, c.join(",")) };
        if !used.contains(&label) {
            used.push(label);
        }
    }
    let log = gpu.pipeline_compiles();
    assert_eq!(log.iter().map(|c| c.label()).collect::<Vec<_>>(), used);
    assert!(log.iter().all(|c| c.first_run_ms.is_none()), "nothing ran yet: {log:?}");

    let feed = Tensors::from([("x".to_string(), Tensor::zeros(shape.clone()))]);
    for _ in 0..2 {
        let got = plan.run(&gpu, &feed).unwrap();
        let want = graph.run_cpu(&feed).unwrap();
        assert!(compare(&got["y"], &want["y"], OP_TOLERANCE).passed);
    }
    let log = gpu.pipeline_compiles();
    assert_eq!(log.len(), used.len(), "a second run compiles nothing: {log:?}");
    assert!(log.iter().all(|c| c.first_run_ms.is_some_and(|ms| ms >= 0.0)), "each first run timed: {log:?}");
}

#[test]
fn bad_feeds_are_clear_errors() {
    let gpu = gpu_or_skip!();
    let shape = Shape::new(&[1, 2, 3, 3]).unwrap();
    let graph = chain(&shape, Tensor::zeros(shape.clone()));
    let plan = Plan::compile(gpu, &graph).unwrap();
    let err = plan.run(gpu, &Tensors::new()).unwrap_err().to_string();
    assert!(err.contains("missing input 'x'"), "{err}");
    let wrong = Tensors::from([("x".to_string(), Tensor::zeros(Shape::new(&[1, 2, 3, 4]).unwrap()))]);
    let err = graph.run_cpu(&wrong).unwrap_err().to_string();
    assert!(err.contains("'x' must be [1 x 2 x 3 x 3]"), "{err}");
    assert!(plan.run(gpu, &wrong).is_err());
}

#[test]
fn shape_errors_surface_while_building() {
    let mut g = Graph::new();
    let a = g.input("a", Shape::new(&[2, 3]).unwrap());
    let b = g.input("b", Shape::new(&[3, 2]).unwrap());
    let err = g.add(Eltwise::Add, &[a, b]).unwrap_err().to_string();
    assert!(err.contains("eltwise"), "{err}");
    assert!(g.view(a, &[7]).is_err());
}
