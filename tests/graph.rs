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

/// What kernels compute from the weights alone runs once, when the plan is compiled: a Winograd
/// conv's weight transform leaves the per-run launches, its buffer counts with the weights, and
/// the plan stays right run after run, also after another conv (weights not constant) has run
/// its own transform through the device's shared scratch slot.
#[test]
fn weight_transforms_run_once_when_a_plan_is_compiled() {
    use glimpse::gpu::GpuTensor;
    use glimpse::ops::conv2d::{Conv2d, ConvKernel};
    use glimpse::ops::Op;
    let gpu = gpu_or_skip!();
    let mut rng = common::rng();
    let conv = Conv2d { kernel: ConvKernel::Winograd, ..Conv2d::new() }.padding([1, 1]);
    let (x_shape, w_shape) = (Shape::new(&[2, 8, 9, 9]).unwrap(), Shape::new(&[12, 8, 3, 3]).unwrap());
    let mut g = Graph::new();
    let x = g.input("x", x_shape.clone());
    let w = g.constant(Tensor::random(w_shape.clone(), &mut rng, -0.3, 0.3));
    let y = g.add(conv, &[x, w]).unwrap();
    g.output("y", y);
    let plan = Plan::compile(gpu, &g).unwrap();

    let labels: Vec<&str> = plan.dispatches().iter().map(|d| d.label()).collect();
    assert!(!labels.contains(&"conv2d_winograd_weight"), "{labels:?}");
    assert!(labels.contains(&"conv2d_winograd_input"), "{labels:?}");
    // The weights, and U: 16 x 12 output x 8 input channels.
    let u_shape = Shape::new(&[16, 12, 8]).unwrap();
    assert_eq!(plan.weight_bytes(), GpuTensor::buffer_bytes(&w_shape) + GpuTensor::buffer_bytes(&u_shape));
    // V and M, in the device's scratch slots (which may have grown larger for other tests): 5 x 5
    // tiles of 2 x 2 per image, 50 in all, padded to 52.
    let (v, m) = (16 * 8 * 52 * 4, 16 * 12 * 52 * 4);
    assert!(plan.scratch_bytes() >= v + m, "{} bytes of scratch", plan.scratch_bytes());
    assert_eq!(plan.bytes(), plan.weight_bytes() + plan.activation_bytes() + plan.scratch_bytes());

    // The same conv with other, non-constant weights: its transform runs with it, into scratch.
    let (other_x, other_w) =
        (Tensor::random(x_shape.clone(), &mut rng, -1.0, 1.0), Tensor::random(w_shape, &mut rng, -0.3, 0.3));
    let (gx, gw) = (gpu.upload(&other_x).unwrap(), gpu.upload(&other_w).unwrap());
    let out = gpu.empty(&conv.output_shape(&[gx.shape(), gw.shape()]).unwrap()).unwrap();
    let launches = conv.encode(gpu, &[&gx, &gw], &out).unwrap();
    assert!(launches.iter().any(|d| d.label() == "conv2d_winograd_weight" && d.prepared_bytes().is_none()));
    for round in 0..3 {
        let feed = Tensors::from([("x".to_string(), Tensor::random(x_shape.clone(), &mut rng, -1.0, 1.0))]);
        let c = compare(&plan.run(gpu, &feed).unwrap()["y"], &g.run_cpu(&feed).unwrap()["y"], OP_TOLERANCE);
        assert!(c.passed, "run {round}: {c:?}");
        let got = gpu.run(&launches, &[&out]).unwrap().remove(0);
        let c = compare(&got, &conv.reference(&[&other_x, &other_w]).unwrap(), OP_TOLERANCE);
        assert!(c.passed, "the other conv, run {round}: {c:?}");
    }
}

/// A plan's weights are constants: writing one is refused (what was computed from it would go stale).
#[test]
fn constant_tensors_refuse_writes() {
    let gpu = gpu_or_skip!();
    let t = Tensor::zeros(Shape::new(&[3]).unwrap());
    let c = gpu.upload_constant(&t).unwrap();
    let e = gpu.write(&c, &t).unwrap_err().to_string();
    assert!(e.contains("constant"), "{e}");
    assert!(gpu.fill(&c, 1.0).unwrap_err().to_string().contains("constant"));
    assert!(gpu.write(&gpu.upload(&t).unwrap(), &t).is_ok());
}
