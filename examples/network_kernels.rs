//! Where a whole network's time goes, per kernel, fused against unfused:
//! GPU timestamps of every dispatch of one run, summed by kernel label.
//!
//!     cargo run --release --example network_kernels -- [ARCH] [KEY=VALUE...]
//!
//! (default timm.skresnet18; random weights with timm's key set, 1 x 3 x 224 x 224).
//! With `EACH=KERNEL` in the environment it also lists every dispatch of that kernel (its index in
//! the plan and its time), for comparing two builds dispatch by dispatch over repeated runs:
//! `EACH=matmul_subgroup cargo run --release --example network_kernels`.

use glimpse::blocks::{self, BuildOptions};
use glimpse::gpu::Gpu;
use glimpse::graph::{Fusion, Plan, Tensors};
use glimpse::weights::Weights;
use glimpse::{Shape, Tensor};
use std::collections::BTreeMap;

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let arch = argv.next().unwrap_or_else(|| "timm.skresnet18".into());
    let args: Vec<String> = argv.collect();
    let gpu = Gpu::new()?;
    let make = blocks::arch(&arch)?.random_weights.ok_or_else(|| anyhow::anyhow!("{arch} makes no random weights"))?;
    let mut rng = fastrand::Rng::with_seed(1);
    let file = make(&args, &mut rng)?;
    let x = Tensor::random(Shape::new(&[1, 3, 224, 224])?, &mut rng, -1.0, 1.0);
    let feed = Tensors::from([("x".to_string(), x.clone())]);
    for (mode, fusion) in [("fused", Fusion::all()), ("unfused", Fusion::none())] {
        let options = BuildOptions { fusion, ..Default::default() };
        let graph = blocks::build(&arch, x.shape(), Weights::new(file.clone(), "random"), &args, options)?;
        let plan = Plan::compile(&gpu, &graph)?;
        plan.run(&gpu, &feed)?; // warm-up: pipelines and first-use costs
                                // Nanoseconds per dispatch.
        let times: Vec<f64> = gpu.submit_timed(plan.dispatches())?.into_iter().map(|ns| ns / 1e6).collect();
        let mut by_kernel: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        for (d, ms) in plan.dispatches().iter().zip(&times) {
            let e = by_kernel.entry(d.label()).or_default();
            *e = (e.0 + 1, e.1 + ms);
        }
        let total: f64 = times.iter().sum();
        println!("{arch} {mode}: {} dispatches, {total:.1} ms (GPU timestamps, one run)", times.len());
        if let Ok(each) = std::env::var("EACH") {
            for (i, (d, ms)) in plan.dispatches().iter().zip(&times).enumerate().filter(|(_, (d, _))| d.label() == each)
            {
                println!("  {mode} dispatch {i:>4} {:<28} {ms:>9.3} ms", d.label());
            }
        }
        let mut rows: Vec<_> = by_kernel.into_iter().collect();
        rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
        for (kernel, (count, ms)) in rows {
            println!("  {kernel:<28} {count:>4} x  {ms:>9.2} ms  {:>5.1}%", 100.0 * ms / total);
        }
    }
    Ok(())
}
