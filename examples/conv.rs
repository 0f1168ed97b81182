//! Checks, then times, a ResNet-style 3x3 conv (1 x 64 x 56 x 56 -> 64 channels,
//! padding 1, folded BatchNorm + ReLU) with GPU timestamps:
//! `cargo run --example conv` (GPU time comes from timestamps, so a debug build is fine).
//!
//! On a CPU adapter (lavapipe, llvmpipe) the numbers measure the driver's
//! compiled code on the host CPU, not GPU speed.

use anyhow::{bail, Result};
use glimpse::check::{compare, OP_TOLERANCE};
use glimpse::gpu::Gpu;
use glimpse::ops::conv2d::Conv2d;
use glimpse::ops::{shapes_of, Activation, Epilogue, Op};
use glimpse::{Shape, Tensor};

const WARMUP: usize = 3;
const RUNS: usize = 10;

fn main() -> Result<()> {
    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    let epilogue = Epilogue { affine: true, activation: Activation::Relu, residual: false };
    let conv = Conv2d::new().padding([1, 1]).epilogue(epilogue);
    let mut rng = fastrand::Rng::with_seed(7);
    let inputs: Vec<Tensor> = [&[1, 64, 56, 56][..], &[64, 64, 3, 3], &[2, 64]]
        .iter()
        .map(|dims| Tensor::random(Shape::new(dims).expect("valid shape"), &mut rng, -1.0, 1.0))
        .collect();
    let inputs: Vec<&Tensor> = inputs.iter().collect();

    // Correct first: the timed dispatch is the one that matched the reference.
    let want = conv.reference(&inputs)?;
    let uploaded = inputs.iter().map(|t| gpu.upload(t)).collect::<glimpse::Result<Vec<_>>>()?;
    let bound: Vec<_> = uploaded.iter().collect();
    let output = gpu.empty(want.shape())?;
    gpu.fill(&output, f32::NAN)?;
    let dispatches = conv.encode(&gpu, &bound, &output)?;
    gpu.submit(&dispatches)?;
    let check = compare(&gpu.read(&output)?, &want, OP_TOLERANCE);
    if !check.passed {
        bail!("conv2d does not match its reference: {check:?}");
    }
    println!("matches the CPU reference (max |err| {:.2e}); timing {RUNS} runs after {WARMUP} warm-up", check.max_abs);

    for _ in 0..WARMUP {
        gpu.submit(&dispatches)?;
    }
    let times: Vec<f64> = (0..RUNS).map(|_| gpu.submit_timed(&dispatches).map(|t| t[0])).collect::<Result<_, _>>()?;
    let (median, min, max) = glimpse::bench::summary(&times);
    let cost = conv.cost(&shapes_of(&inputs));
    println!(
        "conv2d 3x3 64->64 at 56x56, affine+relu: median {:.3} ms (min {:.3}, max {:.3}), {:.2} GFLOP/s, {:.2} GB/s",
        median / 1e6,
        min / 1e6,
        max / 1e6,
        cost.flops as f64 / median,
        cost.bytes as f64 / median,
    );
    if gpu.adapter().is_cpu() {
        println!("(a CPU adapter: this measures the driver on the host CPU, not GPU speed)");
    }
    Ok(())
}
