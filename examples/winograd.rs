//! Times each launch of conv2d's Winograd kernel beside another kernel on the same stride-1 3x3
//! conv (folded BatchNorm + ReLU), alternated, with GPU timestamps: where the Winograd time goes
//! (weight transform, input transform, the 16 GEMMs, output transform), which `glimpse bench`
//! reports only as a total. The two outputs are compared first.
//!
//! `cargo run --release --example winograd -- N C HW COUT DIL [window|gemm|gemm-subgroup] [STRIDE]`
//! (default `8 64 56 64 1 window 1`; stride 2 with dilation 1 runs the stride-2 Winograd scheme,
//! with dilation 2 F(2x2, 3x3) over x's even phase). On a CPU adapter (lavapipe, llvmpipe) the numbers measure
//! the driver's compiled code on the host CPU, not GPU speed; quote ratios from one run.

use anyhow::{bail, Result};
use glimpse::check::{compare, OP_TOLERANCE};
use glimpse::gpu::Gpu;
use glimpse::ops::conv2d::{Conv2d, ConvKernel};
use glimpse::ops::{Activation, Epilogue, Op};
use glimpse::{Shape, Tensor};

const ROUNDS: usize = 3;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| args.get(i).map_or(Ok(default), |a| a.parse::<usize>());
    let (n, c, hw, co, d) = (num(0, 8)?, num(1, 64)?, num(2, 56)?, num(3, 64)?, num(4, 1)?);
    let stride = num(6, 1)?;
    let other = match args.get(5).map_or("window", String::as_str) {
        "window" => ConvKernel::WindowSubgroup,
        "gemm" => ConvKernel::Gemm,
        "gemm-subgroup" => ConvKernel::GemmSubgroup,
        k => bail!("unknown kernel {k:?}: window, gemm or gemm-subgroup"),
    };
    let gpu = Gpu::new()?;
    println!("{} x {c} x {hw} x {hw} > {co}, dilation {d}, stride {stride}, on {}", n, gpu.adapter());
    let mut rng = fastrand::Rng::with_seed(1);
    let mut upload = |dims: &[usize]| gpu.upload(&Tensor::random(Shape::new(dims)?, &mut rng, -1.0, 1.0));
    let inputs = [upload(&[n, c, hw, hw])?, upload(&[co, c, 3, 3])?, upload(&[2, co])?];
    let inputs: Vec<_> = inputs.iter().collect();
    let epilogue = Epilogue { affine: true, activation: Activation::Relu, residual: false };
    let base = Conv2d::new().padding([d, d]).dilation([d, d]).stride([stride; 2]).epilogue(epilogue);
    let conv = |kernel| Conv2d { kernel, ..base };
    let out_shape = base.output_shape(&inputs.iter().map(|t| t.shape()).collect::<Vec<_>>())?;
    let out = [gpu.empty(&out_shape)?, gpu.empty(&out_shape)?];
    let winograd = match (stride, d) {
        (2, 1) => ConvKernel::WinogradStride2,
        _ => ConvKernel::Winograd,
    };
    let runs = [(other, &out[0]), (winograd, &out[1])]
        .map(|(kernel, out)| conv(kernel).encode(&gpu, &inputs, out).map(|d| (kernel, d)));
    let runs = runs.into_iter().collect::<glimpse::Result<Vec<_>>>()?;
    for (_, dispatches) in &runs {
        gpu.submit(dispatches)?;
    }
    let c = compare(&gpu.read(&out[1])?, &gpu.read(&out[0])?, OP_TOLERANCE);
    println!("Winograd against {other:?}: worst {:.3} of the op tolerance", c.worst);
    let mut best: Vec<Vec<f64>> = runs.iter().map(|(_, d)| vec![f64::MAX; d.len()]).collect();
    for _ in 0..ROUNDS {
        for ((_, dispatches), best) in runs.iter().zip(&mut best) {
            for (b, ns) in best.iter_mut().zip(gpu.submit_timed(dispatches)?) {
                *b = b.min(ns / 1e6);
            }
        }
    }
    for ((kernel, dispatches), best) in runs.iter().zip(&best) {
        let launches: Vec<String> =
            dispatches.iter().zip(best).map(|(d, ms)| format!("{} {ms:.1}", d.label())).collect();
        println!(
            "{kernel:?}: {:.1} ms (fastest of {ROUNDS} per launch: {})",
            best.iter().sum::<f64>(),
            launches.join(", ")
        );
    }
    Ok(())
}
