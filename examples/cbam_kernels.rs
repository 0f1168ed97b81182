//! Times the three fused CBAM kernels at 1 x 256 x 56 x 56 (R = 16, k = 7)
//! after checking each against its CPU reference on the same inputs.
//!
//! `cargo run --release --example cbam_kernels [-- iterations]`
//!
//! Every kernel runs in each timed submit (interleaved), timed by GPU
//! timestamps; the table shows the median and the min..max spread per op and GB/s against each op's byte
//! model. On lavapipe or llvmpipe the numbers compare variants only: they say
//! nothing about GPU speed.

use anyhow::{bail, Result};
use glimpse::bench::summary;
use glimpse::check::{compare, OP_TOLERANCE};
use glimpse::gpu::{Dispatch, Gpu, GpuTensor};
use glimpse::ops::cbam_channel_mlp::CbamChannelMlp;
use glimpse::ops::cbam_gate_pool::CbamGatePool;
use glimpse::ops::cbam_spatial_gate::CbamSpatialGate;
use glimpse::ops::{gpu_shapes_of, Op};
use glimpse::{Shape, Tensor};

const N: usize = 1;
const C: usize = 256;
const H: usize = 56;
const W: usize = 56;
const R: usize = 16;
const K: usize = 7;

fn random(dims: &[usize], rng: &mut fastrand::Rng, lo: f32, hi: f32) -> Result<Tensor> {
    Ok(Tensor::random(Shape::new(dims)?, rng, lo, hi))
}

/// One op wired to its GPU tensors; its dispatches are `range` in the shared list.
struct Stage {
    label: &'static str,
    op: Box<dyn Op>,
    inputs: Vec<GpuTensor>,
    output: GpuTensor,
    range: std::ops::Range<usize>,
}

/// Encodes `op` on `inputs` into a fresh (NaN-poisoned) output, appending its
/// dispatches to `all`.
fn stage(
    gpu: &Gpu,
    all: &mut Vec<Dispatch>,
    label: &'static str,
    op: impl Op + 'static,
    inputs: Vec<GpuTensor>,
) -> Result<Stage> {
    let refs: Vec<&GpuTensor> = inputs.iter().collect();
    let output = gpu.empty(&op.output_shape(&gpu_shapes_of(&refs))?)?;
    gpu.fill(&output, f32::NAN)?;
    let start = all.len();
    all.extend(op.encode(gpu, &refs, &output)?);
    Ok(Stage { label, op: Box::new(op), inputs, output, range: start..all.len() })
}

/// Median, min and max of `v`.
fn main() -> Result<()> {
    let iterations: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(30).max(1);
    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    if gpu.adapter().is_cpu() {
        println!("(a CPU adapter: timings compare kernels with each other only)");
    }
    let mut rng = fastrand::Rng::with_seed(7);

    // Realistic inputs: the channel pools of x itself, ca from the MLP and the
    // spatial pools from the gate-pool kernel (chained on the GPU).
    let x = random(&[N, C, H, W], &mut rng, -1.0, 1.0)?;
    let mut pools = Vec::with_capacity(2 * N * C);
    for img in x.data().chunks(C * H * W) {
        let planes: Vec<&[f32]> = img.chunks(H * W).collect();
        pools.extend(planes.iter().map(|p| p.iter().map(|&v| v as f64).sum::<f64>() as f32 / (H * W) as f32));
        pools.extend(planes.iter().map(|p| p.iter().copied().fold(f32::MIN, f32::max)));
    }
    let pooled_c = Tensor::from_vec(&[N, 2, C], pools)?;
    let fc1 = random(&[R, C], &mut rng, -0.1, 0.1)?;
    let fc2 = random(&[C, R], &mut rng, -0.3, 0.3)?;
    let weight = random(&[1, 2, K, K], &mut rng, -0.2, 0.2)?;
    let affine = Tensor::from_vec(&[2, 1], vec![0.9, 0.05])?;
    let residual = random(&[N, C, H, W], &mut rng, -1.0, 1.0)?;

    let up = |t: &Tensor| gpu.upload(t);
    let (x_gpu, weight_gpu) = (up(&x)?, up(&weight)?);
    let mut all = Vec::new();
    let mlp_inputs = vec![up(&pooled_c)?, up(&fc1)?, up(&fc2)?];
    let mlp = stage(&gpu, &mut all, "cbam_channel_mlp", CbamChannelMlp, mlp_inputs)?;
    let ca = mlp.output.clone();
    let pool = stage(&gpu, &mut all, "cbam_gate_pool", CbamGatePool, vec![x_gpu.clone(), ca.clone()])?;
    let sp = pool.output.clone();
    let timm = CbamSpatialGate { kernel: K, affine: true, residual: false, relu: false, map: false };
    let timm_inputs = vec![x_gpu.clone(), ca.clone(), sp.clone(), weight_gpu.clone(), up(&affine)?];
    let timm = stage(&gpu, &mut all, "cbam_spatial_gate (affine)", timm, timm_inputs)?;
    let block = CbamSpatialGate { kernel: K, affine: false, residual: true, relu: true, map: false };
    let block_inputs = vec![x_gpu, ca, sp, weight_gpu, up(&residual)?];
    let block = stage(&gpu, &mut all, "cbam_spatial_gate (+residual, relu)", block, block_inputs)?;
    let stages = [mlp, pool, timm, block];

    // Check first: one run reads every output back; each op is compared with
    // its reference on the very inputs it saw on the GPU.
    let outputs: Vec<&GpuTensor> = stages.iter().map(|s| &s.output).collect();
    let got = gpu.run(&all, &outputs)?;
    for (stage, got) in stages.iter().zip(&got) {
        let inputs = stage.inputs.iter().map(|t| gpu.read(t)).collect::<glimpse::Result<Vec<_>>>()?;
        let want = stage.op.reference(&inputs.iter().collect::<Vec<_>>())?;
        let c = compare(got, &want, OP_TOLERANCE);
        println!("{:<36} max |err| {:.2e}, err/tol {:.3}", stage.label, c.max_abs, c.worst);
        if !c.passed {
            bail!("{} differs from its CPU reference: {c:?}", stage.label);
        }
    }
    println!("All results match. Timing {iterations} submits of all {} dispatches.\n", all.len());

    // Warm up (lavapipe compiles shaders on first use), then time.
    for _ in 0..3 {
        gpu.submit(&all)?;
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); stages.len()];
    let mut per_dispatch: Vec<Vec<f64>> = vec![Vec::new(); all.len()];
    for _ in 0..iterations.max(1) {
        let ns = gpu.submit_timed(&all)?;
        per_dispatch.iter_mut().zip(&ns).for_each(|(t, &v)| t.push(v));
        for (stage, t) in stages.iter().zip(&mut times) {
            t.push(ns[stage.range.clone()].iter().sum::<f64>());
        }
    }
    println!(
        "{:<36} {:>10} {:>10} {:>18} {:>8} {:>8}",
        "kernel", "dispatches", "median us", "min..max us", "MB", "GB/s"
    );
    let mut total = 0.0;
    for (stage, t) in stages.iter().zip(times) {
        let inputs: Vec<&GpuTensor> = stage.inputs.iter().collect();
        let cost = stage.op.cost(&gpu_shapes_of(&inputs));
        let (median, min, max) = summary(&t);
        total += median;
        println!(
            "{:<36} {:>10} {:>10.1} {:>18} {:>8.2} {:>8.2}",
            stage.label,
            stage.range.len(),
            median / 1e3,
            format!("{:.1}..{:.1}", min / 1e3, max / 1e3),
            cost.bytes as f64 / 1e6,
            cost.bytes as f64 / median,
        );
    }
    println!("sum of medians: {:.1} us (both spatial gate variants included)\n", total / 1e3);
    println!("per dispatch:");
    for (d, t) in all.iter().zip(per_dispatch) {
        let (median, min, max) = summary(&t);
        println!("  {:<34} {:>10.1} {:>18}", d.label(), median / 1e3, format!("{:.1}..{:.1}", min / 1e3, max / 1e3));
    }
    Ok(())
}
