//! timm's NonLocalAttn end to end (random weights): the fused plan (one GEMM for t/p/g, flash
//! attention, z + BN + residual in one GEMM epilogue) against the unfused one (single ops, the
//! Q x K attention matrix stored).
//!
//! `cargo run --release --example nonlocal_block [-- reps]`
//!
//! 1. 1 x 64 x 56 x 56: both plans checked against the CPU executor, then timed interleaved (GPU
//!    timestamps, median and spread of each plan's summed dispatches), with dispatch counts and
//!    activation memory (fused O(HW * C), unfused O(HW^2)).
//! 2. 8 x 256 x 56 x 56: the unfused plan's 8 x 3136 x 3136 scores (315 MB) exceed a binding, so
//!    its compilation fails with a clear error; the fused plan runs (timed once).
//!
//! On lavapipe or llvmpipe the times compare the two plans only: they say nothing about GPU speed.

use anyhow::{bail, ensure, Result};
use glimpse::bench::summary;
use glimpse::blocks::{self, BuildOptions};
use glimpse::check::{compare, BLOCK_REL_L2, OP_TOLERANCE};
use glimpse::gpu::Gpu;
use glimpse::graph::{Fusion, Graph, Plan, Tensors};
use glimpse::tensorfile::TensorFile;
use glimpse::weights::Weights;
use glimpse::{Shape, Tensor};
use std::time::Instant;

const ARCH: &str = "timm.NonLocalAttn";

/// A timm NonLocalAttn state_dict over `c` channels: rd = make_divisible(c / 8, 8), PyTorch-like
/// weight scales (N(0, 1/fan_in)-sized uniform), BatchNorm near identity.
fn state_dict(c: usize, rng: &mut fastrand::Rng) -> Result<TensorFile> {
    let rd = (c / 8).div_ceil(8).max(1) * 8;
    let mut file = TensorFile::default();
    let mut put = |name: &str, dims: &[usize], lo: f32, hi: f32| -> Result<()> {
        file.tensors.insert(name.to_string(), Tensor::random(Shape::new(dims)?, rng, lo, hi));
        Ok(())
    };
    let (a, b) = (3f32.sqrt() / (c as f32).sqrt(), 3f32.sqrt() / (rd as f32).sqrt());
    for conv in ["t", "p", "g"] {
        put(&format!("{conv}.weight"), &[rd, c, 1, 1], -a, a)?;
        put(&format!("{conv}.bias"), &[rd], -0.2, 0.2)?;
    }
    put("z.weight", &[c, rd, 1, 1], -b, b)?;
    put("z.bias", &[c], -0.2, 0.2)?;
    put("norm.weight", &[c], 0.8, 1.2)?;
    put("norm.bias", &[c], -0.2, 0.2)?;
    put("norm.running_mean", &[c], -0.2, 0.2)?;
    put("norm.running_var", &[c], 0.5, 1.5)?;
    Ok(file)
}

fn graph(x: &Shape, weights: &TensorFile, fusion: Fusion) -> Result<Graph> {
    let options = BuildOptions { fusion, maps: false, queries: vec![] };
    Ok(blocks::build(ARCH, x, Weights::new(weights.clone(), "random"), &[], options)?)
}

/// GPU time of one submit of the whole plan, in ms (sum of its dispatches' timestamps).
fn timed(gpu: &Gpu, plan: &Plan) -> Result<f64> {
    Ok(per_kernel(gpu, plan)?.iter().map(|(_, ms)| ms).sum())
}

/// GPU time of one submit in ms per kernel, summed over that kernel's dispatches, in plan order.
fn per_kernel(gpu: &Gpu, plan: &Plan) -> Result<Vec<(&'static str, f64)>> {
    let mut out: Vec<(&'static str, f64)> = Vec::new();
    for (d, ns) in plan.dispatches().iter().zip(gpu.submit_timed(plan.dispatches())?) {
        match out.iter_mut().find(|(label, _)| *label == d.label()) {
            Some((_, ms)) => *ms += ns / 1e6,
            None => out.push((d.label(), ns / 1e6)),
        }
    }
    Ok(out)
}

/// Median, min and max.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn main() -> Result<()> {
    let reps: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(7).max(1);
    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    let mut rng = fastrand::Rng::with_seed(7);

    // 1. 1 x 64 x 56 x 56: correct first, then timed.
    let shape = Shape::new(&[1, 64, 56, 56])?;
    let weights = state_dict(64, &mut rng)?;
    let x = Tensor::random(shape.clone(), &mut rng, -1.0, 1.0);
    let feed = Tensors::from([("x".to_string(), x)]);
    let fused_graph = graph(&shape, &weights, Fusion::all())?;
    let want = fused_graph.run_cpu(&feed)?;
    let mut plans = Vec::new();
    for (label, fusion) in [("fused", Fusion::all()), ("unfused", Fusion::none())] {
        let plan = Plan::compile(&gpu, &graph(&shape, &weights, fusion)?)?;
        let got = plan.run(&gpu, &feed)?;
        let c = compare(&got["y"], &want["y"], OP_TOLERANCE);
        println!("{ARCH} {shape} {label:<8} vs CPU: relative L2 error {:.2e}", c.rel_l2);
        ensure!(c.rel_l2 <= BLOCK_REL_L2, "the {label} plan does not match the CPU executor: {c:?}");
        plans.push((label, plan));
    }
    println!("Both plans match. Timing {reps} interleaved submits each.");
    for (_, plan) in &plans {
        gpu.submit(plan.dispatches())?; // warm-up: lavapipe compiles on first use
    }
    let mut times = vec![Vec::new(); plans.len()];
    for _ in 0..reps {
        for ((_, plan), t) in plans.iter().zip(&mut times) {
            t.push(per_kernel(&gpu, plan)?);
        }
    }
    let mut medians = Vec::new();
    for ((label, plan), t) in plans.iter().zip(times) {
        let (median, min, max) = summary(&t.iter().map(|k| k.iter().map(|(_, ms)| ms).sum()).collect::<Vec<f64>>());
        medians.push(median);
        println!(
            "  {label:<8} {:>2} dispatches  median {median:>8.2} ms (min {min:.2}, max {max:.2})  \
             activations {:>7.2} MiB  weights {:.3} MiB",
            plan.dispatch_count(),
            mib(plan.activation_bytes()),
            mib(plan.weight_bytes()),
        );
        let kernels: Vec<String> = (0..t[0].len())
            .map(|i| format!("{} {:.2}", t[0][i].0, summary(&t.iter().map(|k| k[i].1).collect::<Vec<f64>>()).0))
            .collect();
        println!("           median ms per kernel: {}", kernels.join(", "));
    }
    println!(
        "  fused is {:.2}x faster and needs {:.1}x less activation memory",
        medians[1] / medians[0],
        plans[1].1.activation_bytes() as f64 / plans[0].1.activation_bytes() as f64
    );

    // 2. 8 x 256 x 56 x 56: only the fused plan fits.
    let shape = Shape::new(&[8, 256, 56, 56])?;
    let weights = state_dict(256, &mut rng)?;
    match Plan::compile(&gpu, &graph(&shape, &weights, Fusion::none())?) {
        Ok(_) => bail!("the unfused plan at {shape} compiled: its scores should exceed one binding"),
        Err(e) => println!("{ARCH} {shape} unfused: plan compilation fails: {e}"),
    }
    let plan = Plan::compile(&gpu, &graph(&shape, &weights, Fusion::all())?)?;
    let feed = Tensors::from([("x".to_string(), Tensor::random(shape.clone(), &mut rng, -1.0, 1.0))]);
    plan.write_inputs(&gpu, &feed)?;
    let start = Instant::now();
    let ms = timed(&gpu, &plan)?; // pipelines were compiled (and used) in part 1
    let wall = start.elapsed().as_secs_f64() * 1e3;
    let y = plan.run(&gpu, &feed)?;
    ensure!(y["y"].data().iter().all(|v| v.is_finite()), "the fused plan wrote a non-finite value");
    println!(
        "{ARCH} {shape} fused: {} dispatches, GPU {ms:.1} ms (wall {wall:.1} ms), activations {:.1} MiB; \
         ran to completion",
        plan.dispatch_count(),
        mib(plan.activation_bytes()),
    );
    println!("(lavapipe runs on the CPU: these are not GPU-class numbers)");
    Ok(())
}
