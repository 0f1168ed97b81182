//! The Non-local block's attention at the tutorial's size (64 x 56 x 56 input, inter = C / 2 = 32):
//! checks the flash kernel against the CPU reference, then times it (GPU timestamps, median) next
//! to the unfused first half, every softmax row materialised by attention_rows (Q x K floats).
//!
//! `cargo run --release --example nonlocal [reps] [seed]`

use glimpse::check::{compare, OP_TOLERANCE};
use glimpse::gpu::{Dispatch, Gpu};
use glimpse::ops::attention_rows::AttentionRows;
use glimpse::ops::nonlocal_attention::NonLocalAttention;
use glimpse::ops::Op;
use glimpse::{Shape, Tensor};

const N: usize = 1;
const D: usize = 32;
const DV: usize = 32;
const Q: usize = 56 * 56;
const K: usize = Q;

/// Median and (min, max) of per-submit times in ms, each the sum of its dispatches.
fn time(gpu: &Gpu, dispatches: &[Dispatch], reps: usize) -> anyhow::Result<(f64, f64, f64)> {
    gpu.submit(dispatches)?; // warm-up: lavapipe compiles on first use
    let mut ms: Vec<f64> = Vec::with_capacity(reps);
    for _ in 0..reps {
        ms.push(gpu.submit_timed(dispatches)?.iter().sum::<f64>() / 1e6);
    }
    Ok(glimpse::bench::summary(&ms))
}

fn main() -> anyhow::Result<()> {
    let reps: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(5).max(1);
    let gpu = Gpu::new()?;
    println!("adapter: {}", gpu.adapter());
    let seed: u64 = std::env::args().nth(2).map(|s| s.parse()).transpose()?.unwrap_or(7);
    let mut rng = fastrand::Rng::with_seed(seed);
    let random = |dims: &[usize], rng: &mut fastrand::Rng| -> anyhow::Result<Tensor> {
        Ok(Tensor::random(Shape::new(dims)?, rng, -1.0, 1.0))
    };
    let inputs = [random(&[N, D, Q], &mut rng)?, random(&[N, D, K], &mut rng)?, random(&[N, DV, K], &mut rng)?];
    let flash = NonLocalAttention::new(1.0);
    let refs: Vec<&Tensor> = inputs.iter().collect();

    // Correct first: the same inputs through the CPU reference.
    let want = flash.reference(&refs)?;
    let gpu_inputs = inputs.iter().map(|t| gpu.upload(t)).collect::<Result<Vec<_>, _>>()?;
    let bound: Vec<_> = gpu_inputs.iter().collect();
    let y = gpu.empty(want.shape())?;
    gpu.fill(&y, f32::NAN)?;
    let flash_dispatches = flash.encode(&gpu, &bound, &y)?;
    gpu.submit(&flash_dispatches)?;
    let c = compare(&gpu.read(&y)?, &want, OP_TOLERANCE);
    anyhow::ensure!(c.passed, "nonlocal_attention does not match the reference: {c:?}");
    println!(
        "nonlocal_attention matches the reference (max abs error {:.2e}, worst {:.2} of the tolerance). Timing.",
        c.max_abs, c.worst
    );

    // The unfused path's first half: all Q rows of f = softmax(theta^T phi), stored.
    let rows = AttentionRows { scale: 1.0, queries: (0..Q).collect() };
    let f = gpu.empty(&rows.output_shape(&[inputs[0].shape(), inputs[1].shape()])?)?;
    let rows_dispatches = rows.encode(&gpu, &bound[..2], &f)?;

    let shapes: Vec<&Shape> = inputs.iter().map(|t| t.shape()).collect();
    let cost = flash.cost(&shapes);
    let (med, lo, hi) = time(&gpu, &flash_dispatches, reps)?;
    println!(
        "flash nonlocal_attention  N {N}, D {D}, Dv {DV}, Q = K = {Q}: {} dispatches, median {med:.1} ms \
         (min {lo:.1}, max {hi:.1}), {:.2} GFLOP/s on {:.2} GFLOP; buffers {:.2} MB, no Q x K buffer",
        flash_dispatches.len(),
        cost.flops as f64 / med / 1e6,
        cost.flops as f64 / 1e9,
        cost.bytes as f64 / 1e6,
    );
    let rows_cost = rows.cost(&shapes[..2]);
    let (med, lo, hi) = time(&gpu, &rows_dispatches, reps)?;
    println!(
        "unfused half (attention_rows, all {Q} rows): {} dispatches, median {med:.1} ms (min {lo:.1}, \
         max {hi:.1}), {:.2} GFLOP/s on {:.2} GFLOP; its Q x K output alone is {:.1} MB",
        rows_dispatches.len(),
        rows_cost.flops as f64 / med / 1e6,
        rows_cost.flops as f64 / 1e9,
        f.shape().bytes() as f64 / 1e6,
    );
    println!("(lavapipe runs on the CPU: these are not GPU-class numbers)");
    Ok(())
}
