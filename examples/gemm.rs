//! GEMM kernels on this device: each kernel is first checked against the CPU
//! reference (f64 accumulation), then naive and tiled are timed at 512^3 and
//! 1024^3, interleaved in the same run, and reported in GFLOP/s.
//!
//! Run with `cargo run --release --example gemm`. On a CPU adapter (lavapipe)
//! the numbers measure the driver on this CPU, not GPU speed.

use anyhow::{bail, Result};
use glimpse::check::{compare, OP_TOLERANCE};
use glimpse::gpu::{Gpu, GpuTensor};
use glimpse::ops::matmul::{Matmul, Variant};
use glimpse::ops::Op;
use glimpse::{Shape, Tensor};
use std::time::Instant;

/// Rows of the output checked at sizes where the full f64 reference is too slow.
const SAMPLED_ROWS: usize = 24;
/// Largest size whose output is checked in full.
const FULL_CHECK_MAX: usize = 512;

fn main() -> Result<()> {
    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    if gpu.adapter().is_cpu() {
        println!("(a CPU adapter: these timings measure the driver on this CPU, not GPU speed)");
    }
    let timing = if gpu.has_timestamps() { "GPU timestamps" } else { "wall time around submit + wait" };
    let variants = [Variant::Naive, Variant::Tiled, Variant::Vec4, Variant::Auto];
    let mut rng = fastrand::Rng::with_seed(2024);
    for size in [512usize, 1024] {
        let shape = Shape::new(&[1, size, size])?;
        let a = Tensor::random(shape.clone(), &mut rng, -1.0, 1.0);
        let b = Tensor::random(shape.clone(), &mut rng, -1.0, 1.0);
        let (ga, gb) = (gpu.upload(&a)?, gpu.upload(&b)?);
        let out = gpu.empty(&shape)?;
        let flops = Matmul::new(false, false).cost(&[&shape, &shape]).flops as f64;

        // Correct first: every variant against the reference (this run also warms up).
        let want = reference_rows(&a, &b, size)?;
        let check =
            if size <= FULL_CHECK_MAX { "all rows".to_string() } else { format!("{SAMPLED_ROWS} sampled rows") };
        for variant in variants {
            let op = Matmul::new(false, false).with_variant(variant);
            let got = run(&gpu, &op, &ga, &gb, &out)?;
            let got = pick_rows(&got, &want.0, size)?;
            let c = compare(&got, &want.1, OP_TOLERANCE);
            let kernel = op.kernel_for(&gpu, &[&shape, &shape])?.name;
            println!(
                "{size}^3 {variant:?} ({kernel}): matches the CPU reference on {check}: {} (max |err| {:.2e}, err/tol {:.3})",
                c.passed, c.max_abs, c.worst
            );
            if !c.passed {
                bail!("{kernel} differs from the CPU reference at {size}^3");
            }
        }

        // Then time, interleaved so that machine noise hits every variant alike.
        let reps = if size <= 512 { 7 } else { 3 };
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for _ in 0..reps {
            for (v, &variant) in variants.iter().enumerate() {
                let op = Matmul::new(false, false).with_variant(variant);
                times[v].push(time_once(&gpu, &op, &ga, &gb, &out)?);
            }
        }
        println!("{size}^3, median of {reps} runs after warm-up ({timing}):");
        for (v, &variant) in variants.iter().enumerate() {
            let (median, min, max) = glimpse::bench::summary(&times[v]);
            let kernel = Matmul::new(false, false).with_variant(variant).kernel_for(&gpu, &[&shape, &shape])?.name;
            println!(
                "  {:<6} {kernel:<14} {:>9.2} ms (min {:.2}, max {:.2})  {:>6.2} GFLOP/s",
                format!("{variant:?}"),
                median * 1e3,
                min * 1e3,
                max * 1e3,
                flops / median * 1e-9
            );
        }
    }
    Ok(())
}

/// Runs `op` once on a NaN-poisoned output and reads the result back.
fn run(gpu: &Gpu, op: &Matmul, a: &GpuTensor, b: &GpuTensor, out: &GpuTensor) -> Result<Tensor> {
    gpu.fill(out, f32::NAN)?;
    gpu.submit(&op.encode(gpu, &[a, b], out)?)?;
    Ok(gpu.read(out)?)
}

/// Seconds one run of `op` takes: GPU timestamps when the adapter has them,
/// else wall time around submit and wait (the readback is never timed).
fn time_once(gpu: &Gpu, op: &Matmul, a: &GpuTensor, b: &GpuTensor, out: &GpuTensor) -> Result<f64> {
    let dispatches = op.encode(gpu, &[a, b], out)?;
    if gpu.has_timestamps() {
        Ok(gpu.submit_timed(&dispatches)?.iter().sum::<f64>() * 1e-9)
    } else {
        let start = Instant::now();
        gpu.submit(&dispatches)?;
        Ok(start.elapsed().as_secs_f64())
    }
}

/// The reference for the rows that are checked: all of them up to
/// FULL_CHECK_MAX, else SAMPLED_ROWS spread over the matrix (first and last
/// included). The reference runs on just those rows of `a`.
fn reference_rows(a: &Tensor, b: &Tensor, size: usize) -> Result<(Vec<usize>, Tensor)> {
    let rows: Vec<usize> = if size <= FULL_CHECK_MAX {
        (0..size).collect()
    } else {
        (0..SAMPLED_ROWS).map(|i| i * (size - 1) / (SAMPLED_ROWS - 1)).collect()
    };
    let data: Vec<f32> = rows.iter().flat_map(|&r| a.data()[r * size..(r + 1) * size].iter().copied()).collect();
    let a_rows = Tensor::from_vec(&[1, rows.len(), size], data)?;
    Ok((rows, Matmul::new(false, false).reference(&[&a_rows, b])?))
}

/// The given rows of a [1, size, size] result.
fn pick_rows(t: &Tensor, rows: &[usize], size: usize) -> Result<Tensor> {
    let data: Vec<f32> = rows.iter().flat_map(|&r| t.data()[r * size..(r + 1) * size].iter().copied()).collect();
    Ok(Tensor::from_vec(&[1, rows.len(), size], data)?)
}
