//! What creating pipelines costs one at a time and in parallel (`Gpu::compiling_in_parallel`): a
//! fresh device per mode prepares COUNT (default 4) matmul_rows_subgroup pipelines, the kernel
//! whose creation is dearest on lavapipe, each with another row length N so none is cached; nothing
//! is dispatched, so on lazy drivers (llvmpipe) only creation is timed, not the machine code made at
//! a first dispatch. Rounds alternate the two modes (ROUNDS, default 2). Needs subgroups.
//! `cargo run --release --example compile_probe`; where the time goes:
//! `perf record -g target/release/examples/compile_probe && perf report --sort dso`.
//! On a CPU adapter (lavapipe) these times measure the driver on this CPU, not GPU speed.

use anyhow::{bail, Context, Result};
use glimpse::gpu::Gpu;
use glimpse::Shape;
use std::time::Instant;

fn env_count(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v}: not a count")),
        Err(_) => Ok(default),
    }
}

/// Seconds to prepare `count` rows pipelines on a fresh device, in parallel or one at a time.
fn prepare_all(count: usize, parallel: bool) -> Result<f64> {
    let gpu = Gpu::new()?;
    if gpu.profile().subgroup_width.is_none() {
        bail!("{} has no subgroups of one fixed width: matmul_rows_subgroup cannot compile", gpu.adapter());
    }
    let (kernel, params_bytes) = glimpse::ops::kernels()
        .into_iter()
        .find(|(k, _)| k.name == "matmul_rows_subgroup")
        .context("matmul_rows_subgroup is not in the kernel list")?;
    // MatmulParams: 16 u32s, never read (nothing is dispatched).
    let params = [0u32; 16];
    if params_bytes != std::mem::size_of_val(&params) {
        bail!("matmul_rows_subgroup's Params is {params_bytes} bytes, the probe passes 64");
    }
    let t = gpu.empty(&Shape::new(&[64])?)?;
    let width = f64::from(gpu.profile().subgroup_width.unwrap_or(8));
    let prepare = || -> glimpse::Result<Vec<_>> {
        (0..count)
            .map(|i| {
                let n = 49.0 - i as f64;
                let constants = [("SUBGROUP_WIDTH", width), ("N", n), ("NB", 52.0), ("COLUMNS", n), ("EPILOGUE", 5.0)];
                gpu.prepare(&kernel, &constants, &params, &[&t, &t, &t, &t, &t], [1, 1, 1])
            })
            .collect()
    };
    let start = Instant::now();
    let launches = if parallel { gpu.compiling_in_parallel(prepare)? } else { prepare()? };
    for l in &launches {
        l.ready()?;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let count = env_count("COUNT", 4)?;
    let rounds = env_count("ROUNDS", 2)?;
    println!("{count} matmul_rows_subgroup pipelines per mode, {rounds} rounds");
    for round in 0..rounds {
        for parallel in [false, true] {
            let s = prepare_all(count, parallel)?;
            let mode = if parallel { "in parallel" } else { "one at a time" };
            println!("round {}: {mode:<13} {:.2} s", round + 1, s);
        }
    }
    Ok(())
}
