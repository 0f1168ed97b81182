//! The ops suite: each operator at the shapes the blocks give it (stage 1 of a
//! ResNet: 256 channels at 56 x 56, batch 1), built from its public `Op` with
//! fresh random inputs, plus the two ceiling kernels and the Non-local
//! attention pair (flash kernel against the materialising chain).
//!
//! Every builder takes a channel divisor `div`: 1 is the benchmarked instance,
//! larger values give the smaller instance (same kernels) that the CPU
//! reference checks when the full one would take too long.

use super::{OpInstance, Scale, Workload};
use crate::graph::{Graph, Tensors};
use crate::ops::cbam_channel_mlp::CbamChannelMlp;
use crate::ops::cbam_gate_pool::CbamGatePool;
use crate::ops::cbam_spatial_gate::CbamSpatialGate;
use crate::ops::channel_pool::ChannelPool;
use crate::ops::conv2d::{Conv2d, ConvKernel};
use crate::ops::eltwise::Eltwise;
use crate::ops::gate::{Gate, GateMode};
use crate::ops::global_pool::{GlobalPool, PoolVariant};
use crate::ops::matmul::{Axis, Matmul, Variant};
use crate::ops::nonlocal_attention::NonLocalAttention;
use crate::ops::sk_attention::SkAttention;
use crate::ops::sk_sum_pool::SkSumPool;
use crate::ops::softmax::Softmax;
use crate::ops::weighted_sum::WeightedSum;
use crate::ops::{Activation, Epilogue, Op};
use crate::{Result, Shape, Tensor};
use fastrand::Rng;

/// Channels, height and width of the ops suite's feature map (CBAM and SK at ResNet stage 1).
const C: usize = 256;
const H: usize = 56;
const W: usize = 56;
/// Elements of the stream ceiling's tensors: 64 MiB each.
const STREAM_ELEMENTS: usize = 16 << 20;

fn random(dims: &[usize], rng: &mut Rng, lo: f32, hi: f32) -> Result<Tensor> {
    Ok(Tensor::random(Shape::new(dims)?, rng, lo, hi))
}

/// Weights scaled by 1 / sqrt(fan_in) so that outputs stay of order 1.
fn weights(dims: &[usize], fan_in: usize, rng: &mut Rng) -> Result<Tensor> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    random(dims, rng, -bound, bound)
}

/// A folded BatchNorm [2, c]: scales near 1, small shifts.
fn affine(c: usize, rng: &mut Rng) -> Result<Tensor> {
    let mut data: Vec<f32> = (0..c).map(|_| 0.5 + rng.f32()).collect();
    data.extend((0..c).map(|_| 0.2 * (rng.f32() - 0.5)));
    Tensor::from_vec(&[2, c], data)
}

fn instance(op: impl Op + 'static, inputs: Vec<Tensor>) -> Result<OpInstance> {
    Ok(OpInstance::new(Box::new(op), inputs))
}

/// A single-op workload of the ops suite.
fn op(
    name: &'static str,
    shape: &str,
    variant: &str,
    make: impl Fn(&mut Rng, usize) -> Result<OpInstance> + 'static,
) -> Workload {
    Workload::op("ops", name, shape, variant, make)
}

/// The two kernels whose speed sets this device's ceilings: eltwise Add over
/// 64 MiB tensors (bandwidth) and a 512^3 GEMM (compute; the best GEMM of the
/// run raises it).
pub fn ceilings() -> Vec<Workload> {
    vec![
        Workload::op("ceiling", "eltwise", &STREAM_ELEMENTS.to_string(), "add", |rng, div| {
            let n = STREAM_ELEMENTS / div;
            instance(Eltwise::Add, vec![random(&[n], rng, -1.0, 1.0)?, random(&[n], rng, -1.0, 1.0)?])
        }),
        Workload::op("ceiling", "matmul", "512x512x512", "auto", reference_gemm),
    ]
}

/// The GEMM compute percentages are of: the ceiling's 512^3 matmul on the kernel `Auto` picks.
pub(super) fn reference_gemm(rng: &mut Rng, div: usize) -> Result<OpInstance> {
    matmul(rng, 512 / div, Variant::Auto)
}

/// a [1, n, n] x b [1, n, n].
fn matmul(rng: &mut Rng, n: usize, variant: Variant) -> Result<OpInstance> {
    let (a, b) = (random(&[1, n, n], rng, -1.0, 1.0)?, random(&[1, n, n], rng, -1.0, 1.0)?);
    instance(Matmul::new(false, false).with_variant(variant), vec![a, b])
}

/// BasicBlock's conv1 at C x H x W (C / div channels): 3 x 3, padding 1, folded BN + ReLU epilogue.
fn conv3x3(rng: &mut Rng, div: usize, kernel: ConvKernel) -> Result<OpInstance> {
    let c = C / div;
    let epilogue = Epilogue { affine: true, activation: Activation::Relu, residual: false };
    let x = random(&[1, c, H, W], rng, -1.0, 1.0)?;
    let w = weights(&[c, c, 3, 3], 9 * c, rng)?;
    let conv = Conv2d { kernel, ..Conv2d::new().padding([1, 1]).epilogue(epilogue) };
    instance(conv, vec![x, w, affine(c, rng)?])
}

/// Every op workload, in suite order.
pub fn workloads(batch: usize) -> Vec<Workload> {
    let map = format!("1x{C}x{H}x{W}");
    let mut list = vec![
        op("conv2d", &map, "auto", |rng, div| conv3x3(rng, div, ConvKernel::Auto)),
        op("conv2d", &map, "direct", |rng, div| conv3x3(rng, div, ConvKernel::Direct)),
        op("conv2d", &map, "gemm", |rng, div| conv3x3(rng, div, ConvKernel::Gemm)),
        op("matmul", "512x512x512", "auto", |rng, div| matmul(rng, 512 / div, Variant::Auto)),
        op("matmul", "1024x1024x1024", "auto", |rng, div| matmul(rng, 1024 / div, Variant::Auto)),
        op("matmul", "512x512x512", "vec4", |rng, div| matmul(rng, 512 / div, Variant::Vec4)),
        op("matmul", "512x512x512", "naive", |rng, div| matmul(rng, 512 / div, Variant::Naive)),
        op("global_pool", &map, "auto", |rng, div| pool(rng, div, PoolVariant::Auto)),
        op("global_pool", &map, "tree", |rng, div| pool(rng, div, PoolVariant::Tree)),
        op("channel_pool", &map, "auto", |rng, div| instance(ChannelPool, vec![feature_map(rng, div)?])),
        op("gate", &map, "channel", |rng, div| {
            let x = feature_map(rng, div)?;
            instance(Gate::probabilities(GateMode::Channel), vec![x, random(&[1, C / div], rng, 0.0, 1.0)?])
        }),
        op("gate", &map, "pixel", |rng, div| {
            let x = feature_map(rng, div)?;
            instance(Gate::probabilities(GateMode::Pixel), vec![x, random(&[1, 1, H, W], rng, 0.0, 1.0)?])
        }),
        // Non-local attention rows at 56 x 56 with 2 x 2 sub-sampled keys.
        op("softmax", "1x3136x784", "auto", |rng, div| {
            instance(Softmax { axis: 2 }, vec![random(&[1, 3136 / div, 784], rng, -8.0, 8.0)?])
        }),
        op("weighted_sum", &map, "auto", |rng, div| {
            let (b0, b1) = (feature_map(rng, div)?, feature_map(rng, div)?);
            instance(WeightedSum { branches: 2 }, vec![b0, b1, random(&[1, 2, C / div], rng, 0.0, 1.0)?])
        }),
        op("cbam_channel_mlp", &format!("1x{C}"), "auto", |rng, div| {
            let (c, r) = (C / div, C / div / 16);
            let pooled = random(&[1, 2, c], rng, -1.0, 1.0)?;
            instance(CbamChannelMlp, vec![pooled, weights(&[r, c], c, rng)?, weights(&[c, r], r, rng)?])
        }),
        op("cbam_gate_pool", &map, "auto", |rng, div| {
            let x = feature_map(rng, div)?;
            instance(CbamGatePool, vec![x, random(&[1, C / div], rng, 0.0, 1.0)?])
        }),
        op("cbam_spatial_gate", &map, "auto", |rng, div| {
            // timm's CbamModule: 7 x 7 conv with a BatchNorm, no residual.
            let x = feature_map(rng, div)?;
            let ca = random(&[1, C / div], rng, 0.0, 1.0)?;
            let pooled = random(&[1, 2, H, W], rng, -1.0, 1.0)?;
            let w = weights(&[1, 2, 7, 7], 98, rng)?;
            let gate = CbamSpatialGate { kernel: 7, affine: true, residual: false, relu: false, map: false };
            instance(gate, vec![x, ca, pooled, w, affine(1, rng)?])
        }),
        op("sk_sum_pool", &map, "auto", |rng, div| {
            instance(SkSumPool { branches: 2 }, vec![feature_map(rng, div)?, feature_map(rng, div)?])
        }),
        op("sk_attention", &format!("1x{C}"), "auto", |rng, div| {
            // timm's SelectiveKernel at 256 channels: 2 paths, 32 attention channels.
            let (c, d, m) = (C / div, 32 / div, 2);
            let s = random(&[1, c], rng, 0.0, 1.0)?;
            let inputs = vec![
                s,
                weights(&[d, c], c, rng)?,
                affine(d, rng)?,
                weights(&[m * c, d], d, rng)?,
                Tensor::zeros(Shape::new(&[m * c])?),
            ];
            instance(SkAttention { branches: m, reduce_activation: Activation::Relu }, inputs)
        }),
    ];
    for n in batches(batch) {
        list.push(Workload::pair("ops", "nonlocal_attention", &format!("{n}x32x3136"), move |seed, scale, fused| {
            nonlocal_pair(seed, n, scale, fused)
        }));
    }
    list
}

/// Batch 1, and `batch` when it is more.
pub fn batches(batch: usize) -> Vec<usize> {
    if batch > 1 {
        vec![1, batch]
    } else {
        vec![1]
    }
}

fn feature_map(rng: &mut Rng, div: usize) -> Result<Tensor> {
    random(&[1, C / div, H, W], rng, -1.0, 1.0)
}

fn pool(rng: &mut Rng, div: usize, variant: PoolVariant) -> Result<OpInstance> {
    instance(GlobalPool { variant }, vec![feature_map(rng, div)?])
}

/// timm's NonLocalAttn core at 256 x 56 x 56 (32 = 256 / 8 channels, scale
/// 256^-0.5): fused, the flash kernel; unfused, scores theta^T phi (the
/// HW x HW matrix, 39 MB per image), a row softmax and the product with g.
/// A smaller instance keeps the channels and shrinks the map (queries and keys
/// by `div`), which is what the reference's cost grows with.
fn nonlocal_pair(seed: u64, n: usize, scale: Scale, fused: bool) -> Result<(Graph, Tensors)> {
    let (n, d, hw) = (n.min(scale.batch), 32, 3136 / scale.div);
    let factor = 1.0 / (C as f32).sqrt();
    let mut rng = Rng::with_seed(seed);
    let mut feed = Tensors::new();
    let mut g = Graph::new();
    let mut inputs = Vec::new();
    for name in ["theta", "phi", "g"] {
        // Values of a few units give attention rows that are neither flat nor one-hot.
        let t = random(&[n, d, hw], &mut rng, -3.0, 3.0)?;
        inputs.push(g.input(name, t.shape().clone()));
        feed.insert(name.to_string(), t);
    }
    let (theta, phi, values) = (inputs[0], inputs[1], inputs[2]);
    let y = if fused {
        g.add(NonLocalAttention::new(factor), &[theta, phi, values])?
    } else {
        // scores[q, k] = factor * theta[:, q] . phi[:, k]: the scale is the epilogue's affine.
        let mut scaling = vec![factor; hw];
        scaling.extend(vec![0.0; hw]);
        let scaling = g.constant(Tensor::from_vec(&[2, hw], scaling)?);
        let bn = Epilogue { affine: true, ..Epilogue::NONE };
        let scores = g.add(Matmul::new(true, false).epilogue(bn, Axis::Cols), &[theta, phi, scaling])?;
        let f = g.add(Softmax { axis: 2 }, &[scores])?;
        // y [N, Dv, Q] = g [N, Dv, K] x f^T.
        g.add(Matmul::new(false, true), &[values, f])?
    };
    g.output("y", y);
    Ok((g, feed))
}
