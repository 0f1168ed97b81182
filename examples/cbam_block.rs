//! The CBAM block (timm.CbamModule) at 1 x 256 x 56 x 56: the fused and the
//! unfused plan, checked against the CPU executor, then timed interleaved in
//! one run with GPU timestamps. Prints each plan's median time, dispatch count
//! and peak activation memory, and the speedup.
//!
//! `cargo run --release --example cbam_block [-- repeats]`
//!
//! The unfused plan is built from the same single-op kernels the fused one
//! replaces (the best of each); on lavapipe the times compare the two plans
//! with each other and say nothing about GPU speed. `glimpse bench --suite
//! blocks --filter CbamModule --compare torch.json` puts PyTorch beside them.

use anyhow::{bail, Result};
use glimpse::bench::{random_weights, summary};
use glimpse::blocks::{self, BuildOptions};
use glimpse::check::{compare, BLOCK_REL_L2, OP_TOLERANCE};
use glimpse::gpu::Gpu;
use glimpse::graph::{Fusion, Plan, Tensors};
use glimpse::weights::Weights;
use glimpse::{Shape, Tensor};

fn main() -> Result<()> {
    let repeats: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(15).max(1);
    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    let mut rng = fastrand::Rng::with_seed(1);
    let shape = Shape::new(&[1, 256, 56, 56])?;
    let weights = random_weights("timm.CbamModule", 256, &mut rng)?;
    let x = Tensor::random(shape.clone(), &mut rng, -1.0, 1.0);
    let feed = Tensors::from([("x".to_string(), x)]);

    let mut plans = Vec::new();
    for (name, fusion) in [("fused", Fusion::all()), ("unfused", Fusion::none())] {
        let options = BuildOptions { fusion, ..Default::default() };
        let graph = blocks::build("timm.CbamModule", &shape, Weights::new(weights.clone(), "random"), &[], options)?;
        let plan = Plan::compile(&gpu, &graph)?;
        let want = graph.run_cpu(&feed)?;
        let got = plan.run(&gpu, &feed)?;
        let rel = compare(&got["y"], &want["y"], OP_TOLERANCE).rel_l2;
        if rel.is_nan() || rel > BLOCK_REL_L2 {
            bail!("{name} plan differs from the CPU executor: relative L2 {rel:e}");
        }
        println!("{name:<8} matches the CPU executor (relative L2 {rel:.1e})");
        plans.push((name, plan, Vec::new()));
    }
    // Warm up, then alternate the plans so both see the same machine state.
    for (_, plan, _) in &plans {
        gpu.submit_timed(plan.dispatches())?;
    }
    for _ in 0..repeats {
        for (_, plan, times) in plans.iter_mut() {
            times.push(gpu.submit_timed(plan.dispatches())?.iter().sum::<f64>() / 1e6);
        }
    }
    println!("timm.CbamModule 1x256x56x56, median of {repeats} interleaved runs (GPU timestamps):");
    let mut medians = Vec::new();
    for (name, plan, times) in plans {
        let (m, _, _) = summary(&times);
        medians.push(m);
        println!(
            "  {name:<8} {m:8.2} ms  {:2} dispatches  {:6.1} MiB activations",
            plan.dispatch_count(),
            plan.activation_bytes() as f64 / 1048576.0
        );
    }
    println!("fused is {:.2}x faster than unfused", medians[1] / medians[0]);
    Ok(())
}
