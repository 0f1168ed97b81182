//! Soak: the demo model's GPU plan run many times in one process, with the resident memory
//! at the start, along the way and at the end: growth beyond noise is a leak (buffers,
//! bind groups or staging memory not released).
//!
//! `cargo run --release --example soak [-- runs [--no-maps]]` (10,000 runs by default; with
//! `--no-maps` the plan computes `y` only, without the attention-map kernels)
//!
//! The first 100 runs warm up (pipeline caches, allocator pools); memory is measured from
//! there. Prints one line per tenth of the runs and fails when the end is more than 5%
//! (and 8 MiB) above the measured start.

use anyhow::{bail, Context, Result};
use glimpse::blocks::BuildOptions;
use glimpse::gpu::Gpu;
use glimpse::graph::{Fusion, Plan, Tensors};
use glimpse::models::Model;
use glimpse::{Shape, Tensor};
use std::path::Path;
use std::time::Instant;

/// Resident memory of this process in bytes (Linux: /proc/self/statm, in pages of 4 KiB).
fn resident_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("resident memory needs Linux's /proc")?;
    let pages: u64 = statm.split_whitespace().nth(1).context("statm's second field")?.parse()?;
    Ok(pages * 4096)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn main() -> Result<()> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(10_000), |a| a.parse()).context("runs: a count")?;
    let maps = std::env::args().nth(2).as_deref() != Some("--no-maps");
    let model = Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/model.safetensors"))?;
    let gpu = Gpu::new()?;
    let graph = model.build(1, BuildOptions { fusion: Fusion::all(), maps, queries: vec![] })?;
    let plan = Plan::compile(&gpu, &graph)?;
    let [c, h, w] = model.spec.input;
    let mut rng = fastrand::Rng::with_seed(7);
    let x = Tensor::random(Shape::new(&[1, c, h, w])?, &mut rng, -1.0, 1.0);
    let feed = Tensors::from([("x".to_string(), x)]);
    let what = if maps { "with its maps" } else { "y only" };
    println!(
        "soak: {} {what} ({} dispatches per run) on {}, {runs} runs",
        model.spec.name,
        plan.dispatch_count(),
        gpu.adapter()
    );
    let first = plan.run(&gpu, &feed)?;
    let warm = 100.min(runs);
    for _ in 1..warm {
        plan.run(&gpu, &feed)?;
    }
    let start_rss = resident_bytes()?;
    let start = Instant::now();
    println!("after {warm} warm-up runs: resident {:.1} MiB", mib(start_rss));
    for i in warm..runs {
        let out = plan.run(&gpu, &feed)?;
        // Same plan, same input: the same result every time.
        if out["y"] != first["y"] {
            bail!("run {i} gave a different y than the first run");
        }
        if (i + 1) % (runs / 10).max(1) == 0 {
            println!(
                "run {:>6}: resident {:.1} MiB, {:.2} ms per run",
                i + 1,
                mib(resident_bytes()?),
                start.elapsed().as_secs_f64() * 1e3 / (i + 1 - warm) as f64
            );
        }
    }
    let end_rss = resident_bytes()?;
    let growth = end_rss as f64 - start_rss as f64;
    println!(
        "resident: {:.1} MiB after warm-up, {:.1} MiB at the end ({:+.1} MiB)",
        mib(start_rss),
        mib(end_rss),
        growth / 1048576.0
    );
    if growth > (start_rss as f64 * 0.05).max(8.0 * 1048576.0) {
        bail!("resident memory grew by {:.1} MiB over {} runs", growth / 1048576.0, runs - warm);
    }
    Ok(())
}
